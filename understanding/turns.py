"""Each turn of a thread: a new request, a revision of one of its artifacts, or a question about one.

`decide_turn` is pure and cheap (the classifier's fast layers plus a few regular expressions):
it runs on every request before any model is touched. The rules, in the order they apply:

1. Nothing to revise yet: a new request.
2. An explicit task type (UI setting, `--task`) forces the task; the turn revises or asks about
   that type's artifact only when it reads as an edit or a question, else it is new.
3. A question ("why ...", "what does ...", "explain ...") asks about the artifact it names, else
   about the one its classification points at, else about the latest.
4. A confident classification to a family no named artifact belongs to is a new request
   ("Write a Python function ..." after an ERD); when it names or points at an artifact ("break
   this page into tickets") that artifact goes along as reference material.
5. A named artifact ("the ERD", "the page") of the requested family is revised, unless the turn
   clearly asks for another one ("an ERD for a shop" names none: "an" is not "the").
6. An edit ("add ...", "rename ...", "make it ...") or a pointer ("it", "this", "now ...")
   revises the artifact its classification points at, else the one most like it, else the latest.
7. Anything else is a new request.

Families are validator names (`understanding.types.family`): tasks of one family produce the same
kind of artifact, so "the diagram" finds an ERD and an ERD request may revise a flowchart's thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property, lru_cache
from typing import Any, Literal, Protocol

# typing_extensions' TypedDict: it is part of the graph's state, which pydantic reads (Studio).
from typing_extensions import TypedDict

from config.schema import AppConfig
from understanding.features import stem, words
from understanding.types import CARRIED_OVER_CONFIDENCE, Classification, Layer, family

TurnKind = Literal["new", "revision", "question"]
TurnClass = Literal["new", "new+reference", "revision", "question"]
"""What the learned turn model predicts: the kind, and for a new request whether it refers back."""
TURN_CLASSES: tuple[TurnClass, ...] = ("new", "new+reference", "revision", "question")
Signals = dict[str, float]
DECIDED_LAYERS = frozenset({"explicit", "keywords", "semantic", "model"})
"""Layers that only answer when they are confident; carried_over and default are guesses."""
SIMILAR_MARGIN = 0.15
# How an unnamed revision or question picks its artifact once the learned model decided the kind:
# the semantic layer's probability of the artifact's family (and, less, of its exact task), a bonus
# for the latest artifact, and how alike the turn is to the artifact's request. Set by
# cross-validation on the training follow-ups and checked on the dev split.
TASK_WEIGHT = 0.5
LATEST_BONUS = 0.3
SIMILARITY_WEIGHT = 0.5
OVERLAP_WEIGHT = 0.5
NEW_HEAD_WEIGHT = 0.5
"""A new request's type (once the turn model is ready): the semantic layer's probabilities and the
turn model's new-request head's, in these parts. Set by 5-fold cross-validation over the training
follow-ups and the dev split (decision 91.3% -> 92.5%, most of it on types of new requests)."""
MAX_OVERLAP_CHARS = 20_000  # an artifact's first 20 kB is plenty to find the names a turn uses
"""How much more a request must resemble an older artifact's request than the latest one's for an
unnamed edit to go to the older one (cosine of centred embeddings; tuned on the dev split)."""


class ThreadArtifact(TypedDict):
    """The latest artifact of one task type in a thread, kept so a later turn can revise it."""

    content: str
    turn: int
    """The turn (1-based) that delivered it."""
    model: str
    """The model that wrote it."""
    request: str
    """The request that produced it (shortened): later turns are compared with it."""


class TurnClassifier(Protocol):
    """What the turn logic needs of `understanding.classifier.TaskClassifier`."""

    def classify_fast(
        self, prompt: str, *, explicit: str | None = None, last_task: str | None = None
    ) -> Classification:
        """Every layer but the model, without waiting."""
        ...

    def similarity(self, a: str, b: str) -> float:
        """How alike two requests are (0.0 when the embedding model is not ready)."""
        ...

    def turn_class(self, text: str, signals: Signals, shape: str = "") -> TurnClass | None:
        """The learned turn model's answer (`shape`: `turn_shape`), or None while it is not ready."""
        ...

    def task_probabilities(self, text: str) -> dict[str, float]:
        """The semantic layer's probability of each task type ({} while it is not ready)."""
        ...

    def target_probabilities(self, text: str) -> dict[str, float]:
        """The turn model's probability that a revision or question is about each task type."""
        ...

    def new_task_probabilities(self, text: str, thread: Sequence[str]) -> dict[str, float]:
        """The turn model's probability that a new request in a thread of these types asks for each type."""
        ...


@dataclass(frozen=True)
class TurnDecision:
    """What this turn does with the thread's artifacts."""

    kind: TurnKind
    task: str
    """The task type that serves the turn (a revision's or a question's is its artifact's)."""
    target_task: str | None
    """The artifact revised, asked about, or sent as reference (by task type)."""
    target_turn: int | None
    reference: bool
    """A new request that refers to `target_task`'s artifact: it goes along, labelled as reference."""
    reason: str
    decided_by: Layer | None = None
    """Set when the turn, not the classification, chose a new request's task type: "semantic" (its
    words, at the first-request threshold) or "carried_over" ("the same for X": the thread's)."""
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the graph state."""
        # Every field is a scalar: a shallow dict is the same as asdict's deep copy, 4-7x cheaper.
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the words that carry the signals --------------------------------------------------------

_FILLERS = r"ok(?:ay)?|great|thanks|thank you|nice|good|cool|and|so|but|hmm|now|also|then|please|lastly"
_LEAD = rf"^(?:(?:{_FILLERS})\b[,.!]?\s*)*"
_EDIT_VERBS = (
    r"add|rename|remove|delete|drop|change|update|replace|move|use|include|insert|split|merge|fix"
    r"|extend|modify|adjust|swap|shorten|lengthen|expand|tweak|rewrite|reorder|sort|mark|increase"
    r"|decrease|reduce|style|highlight|colou?r|bold|center|centre|align|hide|show|put|set|link"
    r"|connect|group|label|rephrase|reword|translate|simplify|clean up|tighten|trim|cut|convert"
    r"|make (?:it|them|this|that|the|every|each|all)|give (?:it|them|each|every|the)|turn (?:it|them)"
)
# The turn opens with an edit ("add ...", "go back to the ERD and add ...", "in the page, make ..."):
# the strongest sign of a revision, stronger than what a short instruction resembles.
_LEAD_EDIT = re.compile(
    _LEAD + r"(?:(?:go back to|back to|in|on|for|about) [^,.;]*?(?:,|\band\b|:)\s*(?:please\s+)?)?"
    rf"(?:{_EDIT_VERBS})\b"
)
# "funnier", "a bit shorter", "more formal pls": a terse comparative changes what is there.
_NOT_COMPARATIVE = (
    r"another|other|after|over|under|never|ever|either|neither|whether|rather|order|user|number|per"
)
_COMPARATIVE = re.compile(
    _LEAD + r"(?:(?:a )?(?:bit|little|lot|tad|slightly|much|way|even|far|somewhat) )?"
    rf"(?:(?:more|less) [\w-]+|(?!(?:{_NOT_COMPARATIVE})\b)[a-z]{{3,}}er)\b"
)
# "could we swap the photos for a map", "can you make it left to right": an edit asked politely.
_POLITE_EDIT = re.compile(
    _LEAD + r"(?:(?:can|could|would|will) (?:you|we|i|u)|(?:let's|lets))\s+"
    r"(?:please\s+|pls\s+|maybe\s+|just\s+)?"
    rf"(?:{_EDIT_VERBS})\b"
)
_INTO_NEW = re.compile(r"\b(?:into|as) (?:a|an)\b")  # "can you put these into a sprint plan?": a new one
_EDIT = re.compile(
    rf"\b(?:{_EDIT_VERBS}|instead|also|too|as well|now|more|less|bigger|smaller|larger|shorter|longer)\b"
)
# Creation: "write ...", "an ERD for a shop", "now one for the analytics pipeline".
_CREATE = re.compile(
    _LEAD + r"(?:(?:can|could|would) you\s+(?:please\s+)?)?(?:write|create|generate|draw|build|design|produce"
    r"|draft|sketch|make (?:a|an|me|us|some|another|one)|give me|i need|i want|let's have|start)\b"
    r"|" + _LEAD + r"(?:a|an|another|one more|one|some)\b"
    r"|\b(?:a|another) new\b|\bfrom scratch\b|\bseparate\b|\banother one\b"
    r"|\b(?:i|we) (?:also |still )?need (?:a|an|another|some)\b|\ba second (?:one|version)\b"
    r"|\bkeep (?:that|this|the) one\b"
)
_POLITE = re.compile(_LEAD + r"(?:can|could|would|will) you\s+(?:please\s+)?")
_WE_REQUEST = re.compile(_LEAD + r"(?:can|could) (?:we|i)\s+")
# A question asks about what is there; "can you add ..." is a request in a question's clothes.
_QUESTION_WORDS = (
    r"why|what|how|which|where|who|when|is|are|does|do|did|should|shouldn't|isn't|aren't|doesn't"
    r"|can|could|would|will|what's|whats|how's|is there|are there"
)
_QUESTION_START = re.compile(
    _LEAD + rf"(?:{_QUESTION_WORDS}|explain|describe|tell me|walk me through|summari[sz]e)\b"
)
_QUESTION_CLAUSE = re.compile(rf"(?:^|[,;:]\s*)(?:{_QUESTION_WORDS})\b[^,;:]*\?\s*$")
_ASK_VERBS = re.compile(r"^(?:explain|describe|tell me|walk me through|summari[sz]e)\b")
# "What if we add ...", "how about a tags table": suggestions, i.e. edits.
_SUGGESTION = re.compile(_LEAD + r"(?:what if|how about|what about|why not)\b")
# "it", "this", "these": the turn points at something already there ("that" is too often a
# relative pronoun: "a function that reverses a list").
_POINTER = re.compile(r"\b(?:it|its|it's|them|this|these|those|above|same|that one)\b")
# "can it also ...", "could each task get ...": a change asked for politely, or a question.
_MODAL_ASK = re.compile(
    _LEAD + r"(?:can|could|would|should) (?:it|they|this|that|these|those|each|every|the)\b"
)
_WORD = re.compile(r"\w+")
MIN_REQUEST_WORDS = 3
# "the same for the admin page", "one like this": another artifact of the referred one's type.
_SAME = re.compile(
    r"\b(?:(?:do|does|did) the same|same (?:for|thing|kind|again)|one like (?:this|that|it)"
    r"|another one|similar one|(?:now|also|and|then) one for|one more (?:for|like))\b"
)
# "the android one", "one of those for refunds", "same format for gift cards": another artifact of
# the kind already there, named by "one" or the kind's form rather than by its type.
_ANOTHER_LIKE = re.compile(
    r"\bone of (?:those|these|them)\b"
    r"|\b(?:the|a|an|another|a second|a third)\s+(?:[\w-]+\s+)?one\b(?!-)"
    r"|\bsame (?:format|treatment|idea|style|structure|template|layout|approach|shape)\b"
    r"|\bmatching (?:this|that|it|the (?:first|other|last) one)\b"
)
# "that plan", "that mindmap": a pointer when a noun follows (not "a function that reverses").
_THAT = re.compile(r"\b(?:of|from|for|on|with|to|in) that\b|\bthat (?:one|plan|page|diagram|list|doc|code)\b")
_HERE = re.compile(r"\b(?:here|above)\b")
# The new artifact is made from an earlier one: "turn Q3 into tickets", "README for the CLI".
_CONVERT = re.compile(
    r"\b(?:turn|convert|break|translate|transform)\b.*\binto\b"
    r"|\b(?:put|show|lay out) (?:that|this|it|these|those) (?:on|in|as) (?:a|an)\b"
)
_FROM_EARLIER = re.compile(
    r"\b(?:into|for|from|based on|out of|matching|covering)\s+(?:the|this|that|these|those)\b"
)
# "separate from this", "a different system": the pointer says what the request is not about.
_DISTINCT = re.compile(r"\b(?:separate|unrelated|different|independent|other than)\b")
# Says outright that it is not about the thread's artifacts: a new request, with no reference.
_UNRELATED = re.compile(
    r"\b(?:separate from (?:this|that|the above|it)|unrelated|nothing to do with|new topic|different topic"
    r"|(?:it's|it is|that's) a separate (?:system|project|service|app|thing))\b"
)

# Nouns that name an artifact of a family ("the page"); a task's own keywords name its type ("the ERD").
FAMILY_NOUNS: dict[str, tuple[str, ...]] = {
    "mermaid": ("diagram", "chart", "graph", "drawing", "picture", "visual", "figure"),
    "html": ("page", "html", "site", "website", "web page", "webpage", "layout", "form", "markup", "email"),
    "code": (
        *("code", "function", "script", "class", "module", "program", "snippet", "method"),
        *("implementation", "component", "query", "tests"),
        # LABELS.md: DDL, configs such as Dockerfiles, and shell one-liners are code.
        *("ddl", "terraform", "one-liner", "dockerfile"),
    ),
    "documentation": (
        *("doc", "docs", "documentation", "document", "write-up", "writeup", "text"),
        "explanation",  # LABELS.md: "explain X" asks for documentation
    ),
    "jira": ("backlog", "items", "list"),
}
# Nouns that name an artifact of one of the shipped task types ("the stories" are the JIRA
# items even when a plan came later); they count as that task's own keywords.
TASK_NOUNS: dict[str, tuple[str, ...]] = {
    "mermaid": (
        *("flowchart", "flow chart", "sequence diagram", "state diagram", "class diagram"),
        *("mindmap", "mind map", "gantt", "timeline", "pie chart", "user journey"),
    ),
    "erd": ("erd", "schema", "data model", "tables", "entities", "er diagram"),
    "architecture": ("architecture", "components", "infra", "system diagram"),
    "html": ("landing page",),
    "documentation": (
        *("readme", "guide", "runbook", "tutorial", "adr", "post-mortem", "postmortem"),
        *("explainer", "faq", "release notes", "changelog"),
    ),
    "jira": ("tickets", "ticket", "stories", "story", "epic", "epics", "issues", "bugs"),
    "tasks": ("tasks", "task list", "checklist", "breakdown", "steps", "to-do list", "todo list"),
    "planning": ("plan", "roadmap", "milestones", "schedule", "sprint plan", "phases"),
}
# Up to three words between the determiner and the noun ("the blog's landing page"), none of
# which starts another phrase: in "the sql for this erd", "the" does not reach "erd".
_PHRASE_START = r"the|this|that|these|those|a|an|for|of|to|in|on|and|with|from|into|as|by"
_MODIFIERS = rf"(?:(?!(?:{_PHRASE_START})\b)[\w'-]+\s+){{0,3}}?"
_DETERMINER = r"\b(?:the|this|that|these|those|my|our|your|its|same|previous|earlier|first|last)\s+"


@lru_cache(maxsize=4096)
def _mention(noun: str) -> re.Pattern[str]:
    # A definite article, up to three words ("the blog's landing page"), then the noun.
    return re.compile(_DETERMINER + _MODIFIERS + re.escape(noun) + r"(?:'s|s)?\b")


@lru_cache(maxsize=4096)
def _pointed_mention(noun: str) -> re.Pattern[str]:
    # "this page", "those two tickets": a pointer, up to three words, then the noun.
    pointer = r"\b(?:this|that|these|those)\s+" + _MODIFIERS
    return re.compile(pointer + re.escape(noun) + r"(?:'s|s)?\b")


# What a new request takes from an earlier artifact, beyond naming it: "the same style", "citing
# the otel one", "based on", "a go version", "for it".
_OBJECT_POINTER = re.compile(
    r"\b(?:for|from|of|on|with|into|to|in|about|like|using|citing|under|behind|around)\s+"
    r"(?:it|its|this|that|them|these|those)\b"
)
_TAKES_FROM = re.compile(
    r"\b(?:based on|citing|matching|according to|in line with|consistent with|goes with|go with"
    r"|(?:use|using|reuse|from|per|with|of) the (?:same|existing|above|previous|first|second|third|last)"
    r"|same (?:style|look|format|structure|layout|tone|thing|idea|data|numbers|steps))\b"
)
_VERSION = re.compile(r"\b(?:version|variant|equivalent|counterpart|port|translation|edition)s?\b")
# "an ERD for a pharmacy", "a diagram of how X works": the request brings its own subject.
_OWN_SUBJECT = re.compile(
    r"\b(?:for|of|about|on|explaining|describing|covering)\s+(?:a|an|my|our|some|how|what|why|when)\b"
)
# "the app", "those numbers": a definite phrase, whose word may be something the thread set up.
_DEFINITE = re.compile(r"\b(?:the|this|that|these|those|its|each|every)\s+([\w'-]+)")

_RAW_WORD = re.compile(r"[a-z0-9]+")
SHAPE_OLD, SHAPE_NEW = "topicold", "topicnew"  # no suffix `features.stem` would strip
_STOPWORDS = frozenset(
    "a an the this that these those it its it's and or but to of in on for with from by as at is are"  # noqa: SIM905
    " be can could would should will please pls now also too add make change use put more less".split()
)


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if w not in _STOPWORDS and len(w) > 2)


def _type_words(config: AppConfig) -> frozenset[str]:
    """Words that name a kind of artifact ("diagram", "tickets"): not what a request is about.

    Shared with the thread, they say nothing about whether the request is made from its artifact.
    """
    nouns = (
        *(n for route in config.routing.tasks.values() for n in route.keywords),
        *(n for names in (*TASK_NOUNS.values(), *FAMILY_NOUNS.values()) for n in names),
    )
    return _words_of(tuple(sorted({n.lower() for n in nouns})))


@lru_cache(maxsize=8)
def _words_of(nouns: tuple[str, ...]) -> frozenset[str]:
    return frozenset(w for noun in nouns for w in words(noun))


def _topic_words(text: str) -> list[str]:
    """The stems of the words that carry a topic (not "the", "this", "please"), in order."""
    return [stem(w) for w in _RAW_WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2]


def _thread_topics(artifacts: Mapping[str, ThreadArtifact], kinds: frozenset[str]) -> frozenset[str]:
    """What the thread's requests were about, without the words that name kinds of artifact."""
    return frozenset(w for a in artifacts.values() for w in _topic_words(a["request"])) - kinds


def turn_shape(config: AppConfig, text: str, artifacts: Mapping[str, ThreadArtifact]) -> str:
    """The turn with each topic word replaced by whether the thread's requests used it.

    After a request about an app, "dockerfile for the app" becomes "dockerfile for the topicold"
    and "a sequence diagram for depositing a cheque" "a sequence diagram for topicnew a topicnew":
    the learned model reads how a request leans on the thread, whatever the topic.
    """
    kinds = _type_words(config)
    return _shape(text, kinds, _thread_topics(artifacts, kinds))


def _shape(text: str, kinds: frozenset[str], thread: frozenset[str]) -> str:
    out = []
    for word in _RAW_WORD.findall(normalise(text)):
        token = stem(word)
        keep = word in _STOPWORDS or len(word) <= 2 or token in kinds
        out.append(word if keep else SHAPE_OLD if token in thread else SHAPE_NEW)
    return " ".join(out)


def _adds_artifact(config: AppConfig) -> re.Pattern[str]:
    """Matches "add an ERD for the shipping side", "and a sequence diagram for refunds": new artifacts."""
    keywords = tuple(sorted({n.lower() for route in config.routing.tasks.values() for n in route.keywords}))
    return _adds_artifact_pattern(keywords)


@lru_cache(maxsize=8)
def _adds_artifact_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    nouns = {
        *keywords,
        *(n for names in TASK_NOUNS.values() for n in names),
        "diagram",
        "page",
        "doc",
        "script",
    }
    alternatives = "|".join(sorted((re.escape(n) for n in nouns), key=len, reverse=True))
    return re.compile(
        rf"\b(?:add|also|plus|and)\s+(?:a|an|another|one more)\s+(?:[\w-]+\s+)?(?:{alternatives})s?\b"
        r"(?!\s+(?:to|in|on|into|inside|between|next to|beside)\b)"  # "add a diagram to the README": an edit
    )


def normalise(prompt: str) -> str:
    """Lower case, one space between words, curly apostrophes straightened."""
    return " ".join(prompt.lower().replace("\u2019", "'").split())


def is_question(text: str) -> bool:
    """The turn asks about something rather than asking for something."""
    if _SUGGESTION.search(text) or _WE_REQUEST.search(text):
        return False
    polite = _POLITE.search(text)
    if polite:  # "could you explain ..." asks; "could you add ..." requests
        return bool(_ASK_VERBS.search(text[polite.end() :]))
    return bool(_QUESTION_START.search(text) or _QUESTION_CLAUSE.search(text))


def mentioned_tasks(config: AppConfig, text: str, artifacts: Mapping[str, ThreadArtifact]) -> list[str]:
    """The thread's artifacts the turn names with a definite article, most specific first.

    A task's own keyword ("the ERD") names that task's artifact; a family noun ("the diagram")
    names the family's latest artifact.
    """
    found: dict[str, int] = {}  # task -> length of the longest noun that named it
    for task in artifacts:
        route = config.routing.tasks.get(task)
        if route is None:
            continue
        own = (*route.keywords, *TASK_NOUNS.get(task, ()))
        for noun in (*own, *FAMILY_NOUNS.get(route.validator, ())):
            if _mention(noun.lower()).search(text):
                specific = len(noun) + (100 if noun in own else 0)
                found[task] = max(found.get(task, 0), specific)
    # Family nouns name the latest artifact of the family, not every one of it.
    best_by_family: dict[str, str] = {}
    for task in sorted(found, key=lambda t: (found[t], artifacts[t]["turn"]), reverse=True):
        best_by_family.setdefault(family(config, task), task)
    return sorted(best_by_family.values(), key=lambda t: (found[t], artifacts[t]["turn"]), reverse=True)


def without_mentions(config: AppConfig, text: str, artifacts: Mapping[str, ThreadArtifact]) -> str:
    """The turn with its mentions of the thread's artifacts blanked out.

    What a turn asks for is classified without what it refers to: "write the SQL for this ERD"
    asks for code, "break this page into tickets" for tickets.
    """
    masked = text
    for task in artifacts:
        route = config.routing.tasks.get(task)
        if route is None:
            continue
        # A task's own keyword after any determiner names it ("the ERD"); other nouns only
        # after a pointer ("this page", "those tables"): "the SQL schema" and "the first two
        # tasks" are what is asked about, not mentions.
        for noun in route.keywords:
            masked = _mention(noun.lower()).sub(" ", masked)
        for noun in (*TASK_NOUNS.get(task, ()), *FAMILY_NOUNS.get(route.validator, ())):
            masked = _pointed_mention(noun.lower()).sub(" ", masked)
    return " ".join(masked.split())


def decide_turn(
    config: AppConfig,
    classifier: TurnClassifier,
    prompt: str,
    *,
    explicit: str | None,
    artifacts: Mapping[str, ThreadArtifact],
    last_task: str | None,
) -> TurnDecision:
    """Decide this turn from its text and the thread's artifacts (no model is asked)."""
    request = without_mentions(config, normalise(prompt), artifacts)
    classification = classifier.classify_fast(request, explicit=explicit, last_task=last_task)
    return decide_with(config, classification, prompt, artifacts=artifacts, helper=classifier)


def decide_with(
    config: AppConfig,
    c: Classification,
    prompt: str,
    *,
    artifacts: Mapping[str, ThreadArtifact],
    helper: TurnClassifier | None = None,
) -> TurnDecision:
    """`decide_turn` for a classification already made (the graph shows it in the same step).

    `helper` (the classifier) adds the learned turn model, similarities and task probabilities;
    without it, or before they are ready, the hand-written rules decide alone.
    """
    known = _known(config, artifacts)
    if not known:
        return TurnDecision("new", c.task, None, None, False, "nothing to revise yet")
    return _Turn(config, c, normalise(prompt), known, helper).decide()


def turn_signals(
    config: AppConfig,
    c: Classification,
    prompt: str,
    *,
    artifacts: Mapping[str, ThreadArtifact],
    helper: TurnClassifier | None = None,
) -> Signals:
    """What the rules see in a follow-up, as numbers: the learned turn model's input."""
    return _Turn(config, c, normalise(prompt), _known(config, artifacts), helper).signals()


def thread_types(artifacts: Mapping[str, ThreadArtifact]) -> tuple[str, ...]:
    """The task types of a thread's artifacts, oldest first."""
    return tuple(sorted(artifacts, key=lambda t: artifacts[t]["turn"]))


def _known(config: AppConfig, artifacts: Mapping[str, ThreadArtifact]) -> dict[str, ThreadArtifact]:
    """The thread's artifacts of task types this config still routes."""
    return {t: a for t, a in artifacts.items() if t in config.routing.tasks}


class _Turn:
    """One turn's signals, computed once; `decide` applies the module's rules in order."""

    def __init__(
        self,
        config: AppConfig,
        c: Classification,
        text: str,
        artifacts: Mapping[str, ThreadArtifact],
        helper: TurnClassifier | None,
    ) -> None:
        self.config, self.c, self.text, self.artifacts = config, c, text, artifacts
        self.helper = helper
        self.latest = max(artifacts, key=lambda t: artifacts[t]["turn"])
        self.named = mentioned_tasks(config, text, artifacts)
        self.asks = is_question(text)
        self.lead_edit = bool(_LEAD_EDIT.search(text))
        self.creates = bool(_CREATE.search(text)) and not self.lead_edit
        self.edits = bool(_EDIT.search(text))
        self.points = bool(_POINTER.search(text))
        # A semantic match of a short instruction ("put redis between the api and the db") says
        # little: such instructions resemble no task's examples. Keywords or a model still count.
        self.confident = c.layer in DECIDED_LAYERS and not (c.layer == "semantic" and self.lead_edit)

    def family(self, task: str) -> str:
        return family(self.config, task)

    def signals(self) -> Signals:
        """The rules' evidence as numbers (1.0/0.0 flags, similarities in -1..1)."""
        c_family = self.family(self.c.task)
        families = {self.family(t) for t in self.artifacts}
        named_families = {self.family(t) for t in self.named}
        n_words = len(self.text.split())
        sim_latest = self._sim(self.latest)
        sim_best = max((self._sim(t) for t in self.artifacts), default=0.0)
        flags = {
            "asks": self.asks,
            "creates": self.creates,
            "lead_edit": self.lead_edit,
            "edits": self.edits,
            "points": self.points,
            "suggests": bool(_SUGGESTION.search(self.text)),
            "converts": bool(_CONVERT.search(self.text)),
            "from_earlier": bool(_FROM_EARLIER.search(self.text)),
            "distinct": bool(_DISTINCT.search(self.text)),
            "that_noun": bool(_THAT.search(self.text)),
            "here": bool(_HERE.search(self.text)),
            "same": bool(_SAME.search(self.text)),
            "adds_artifact": bool(_adds_artifact(self.config).search(self.text)),
            "modal_ask": bool(_MODAL_ASK.search(self.text)),
            "named": bool(self.named),
            "named_latest": self.latest in self.named,
            "named_older": any(t != self.latest for t in self.named),
            "named_other_family": bool(named_families - {c_family}),
            "named_same_family": c_family in named_families,
            "confident": self.confident,
            "task_in_thread": self.c.task in self.artifacts,
            "family_in_thread": c_family in families,
            "family_is_latest": c_family == self.family(self.latest),
            "question_mark": self.text.endswith("?"),
            "several_artifacts": len(self.artifacts) > 1,
            "words<=3": n_words <= 3,
            "words<=6": n_words <= 6,
            "words>12": n_words > 12,
        }
        out: Signals = {name: float(value) for name, value in flags.items()}
        out.update({f"layer={layer}": float(self.c.layer == layer) for layer in sorted(DECIDED_LAYERS)})
        probabilities = self._request_probabilities
        by_family = self._by_family(probabilities)
        out["p_thread_families"] = sum(p for f, p in by_family.items() if f in families)
        out["p_latest_family"] = by_family.get(self.family(self.latest), 0.0)
        out["p_top"] = max(probabilities.values(), default=0.0)
        out["confidence"] = self.c.confidence if self.confident else 0.0
        out["sim_latest"] = sim_latest
        out["sim_best_margin"] = sim_best - sim_latest
        out.update(self._reference_signals())
        return out

    def _reference_signals(self) -> Signals:
        """What a new request would take from the thread: its words, a pointer, "same", "based on".

        Topic alone misleads ("a sequence diagram for depositing a cheque at the ATM" after an ATM
        flowchart stands alone): a request made from an artifact leans on the thread's words with
        little of its own, a stand-alone one brings a subject of its own. Only the thread's
        requests are read (artifact content is not in the training data).
        """
        kinds, thread = self._kinds, self._thread_topics
        mine = frozenset(_topic_words(self.text)) - kinds
        novel, shared = len(mine - thread), len(mine & thread)
        after = [m.group(1) for m in _DEFINITE.finditer(self.text)]
        definite = {stem(w) for w in after if w not in _STOPWORDS} - kinds
        return {
            "novel>=1": float(novel >= 1),
            "novel>=3": float(novel >= 3),
            "novel>=5": float(novel >= 5),
            "shared>=1": float(shared >= 1),
            "shared>=2": float(shared >= 2),
            "novel_share": novel / len(mine) if mine else 0.0,
            "definite_shared": float(bool(definite & thread)),
            "definite_novel": float(bool(definite - thread)),
            "object_pointer": float(bool(_OBJECT_POINTER.search(self.text))),
            "takes_from": float(bool(_TAKES_FROM.search(self.text))),
            "version": float(bool(_VERSION.search(self.text))),
            "own_subject": float(bool(_OWN_SUBJECT.search(self.text))),
            "another_like": float(bool(_ANOTHER_LIKE.search(self.text))),
            "unrelated": float(bool(_UNRELATED.search(self.text))),
        }

    def decide(self) -> TurnDecision:
        if self.c.layer == "explicit":
            return self._explicit()
        if self.helper is None:
            return self._by_rules()
        shape = _shape(self.text, self._kinds, self._thread_topics)
        learned = self.helper.turn_class(self.text, self.signals(), shape)
        if learned is not None:
            return self._as(learned)
        return self._by_rules()

    def _as(self, learned: TurnClass) -> TurnDecision:
        """The learned model chose the kind; the artifact and the task are scored here."""
        if _UNRELATED.search(self.text):
            learned = "new"
        elif self._plainly_edits():
            learned = "revision"
        if learned in ("question", "revision"):
            return self._about(self._target(), "question" if learned == "question" else "revision")
        task, why, how = self._new_task()
        decision = self._new(task, why) if learned == "new" else self._new(task, why, refer=self._referred())
        return replace(decision, decided_by=how[0], confidence=how[1]) if how else decision

    def _plainly_edits(self) -> bool:
        """An edit asked for politely or in one comparative: not a question, nor a new request.

        "could we swap the photos for a map?", "funnier", "a bit shorter": the learned model, which
        has seen few of them, reads the first as a question or a request and the second as anything.
        """
        if _adds_artifact(self.config).search(self.text) or _INTO_NEW.search(self.text):
            return False
        terse = len(self.text.split()) <= 4 and bool(_COMPARATIVE.search(self.text))
        return terse or bool(_POLITE_EDIT.search(self.text))

    def _target(self) -> str:
        """The artifact a revision or a question is about: the named one, else the likeliest."""
        if self.named:
            return self.named[0]
        probabilities: dict[str, float] = {}
        if self.helper is not None:  # what edits are about, and what requests are about, in equal parts
            for source in (self.helper.target_probabilities(self.text), self._request_probabilities):
                for task, p in source.items():
                    probabilities[task] = probabilities.get(task, 0.0) + p / 2
        by_family = self._by_family(probabilities)

        def score(task: str) -> float:
            return (
                by_family.get(self.family(task), 0.0)
                + TASK_WEIGHT * probabilities.get(task, 0.0)
                + LATEST_BONUS * (task == self.latest)
                + SIMILARITY_WEIGHT * self._sim(task)
                + OVERLAP_WEIGHT * self._overlap(task)
            )

        return max(self.artifacts, key=score)

    def _overlap(self, task: str) -> float:
        """Share of the turn's content words found in the artifact or its request.

        "add an SMS box next to the email provider" names something only one artifact has.
        """
        mine = _content_words(self.text)
        if not mine:
            return 0.0
        artifact = self.artifacts[task]
        theirs = _content_words(artifact["request"]) | _content_words(artifact["content"][:MAX_OVERLAP_CHARS])
        return len(mine & theirs) / len(mine)

    def _referred(self) -> str:
        return self.named[0] if self.named else self._reference_target()

    def _new_task(self) -> tuple[str, str, tuple[Layer, float] | None]:
        """A new request's task type, why, and the layer that chose it when not the classification's."""
        # "now one for X, separate from this": same type, no reference. "the android one" too, unless
        # the turn names the type it wants ("keep the leave one and make a state diagram for ...").
        another = bool(_ANOTHER_LIKE.search(self.text)) and not self.confident
        if _SAME.search(self.text) or another:
            referred = self._referred()
            why = f"asks for another {referred} like the one from turn {self._turn(referred)}"
            return (
                referred,
                why,
                (None if referred == self.c.task else ("carried_over", CARRIED_OVER_CONFIDENCE)),
            )
        # What it asks for, without what it refers to; "and the sequence diagram?" is all mention.
        request = without_mentions(self.config, self.text, self.artifacts)
        learned = (
            self.helper.new_task_probabilities(request, thread_types(self.artifacts))
            if self.helper is not None
            else {}
        )
        if self.confident and not learned:
            return self.c.task, "asks for a new artifact", None
        # Known to be a new request: the first-request threshold applies, not the thread's. The
        # classification's layers read follow-ups as first requests ("generate the django models
        # for it" resembles the ERD it follows); the turn model's new-request head read follow-ups.
        if len(_WORD.findall(request)) < MIN_REQUEST_WORDS:
            request = self.text
        probabilities = self.helper.task_probabilities(request) if self.helper is not None else {}
        if learned:
            probabilities = {
                t: (1 - NEW_HEAD_WEIGHT) * probabilities.get(t, 0.0) + NEW_HEAD_WEIGHT * learned.get(t, 0.0)
                for t in {*probabilities, *learned}
            }
        best = max(probabilities, key=lambda t: probabilities[t], default=None)
        if best is not None and probabilities[best] >= self.config.routing.semantic_min_confidence:
            p = round(probabilities[best], 3)
            return best, "asks for a new artifact", (None if best == self.c.task else ("semantic", p))
        return self.c.task, "asks for a new artifact", None

    def _reference_target(self) -> str:
        """The artifact a new request refers to without naming it: the most alike, else the latest."""
        if self.helper is not None and len(self.artifacts) > 1:
            best = max(self.artifacts, key=self._sim)
            if self._more_alike(best):
                return best
        return self.latest

    def _turn(self, task: str) -> int:
        return self.artifacts[task]["turn"]

    def _by_rules(self) -> TurnDecision:
        """The hand-written rules (the module docstring), used until the learned model is ready."""
        if self.asks and not self.creates:
            return self._about(self._question_target(), "question")
        if self.named and self.lead_edit:  # "go back to the ERD and add a TAGS table"
            return self._about(self.named[0], "revision")
        if self.confident:
            return self._confident()
        if self.named:
            if self.creates:
                return self._new(self.c.task, "asks for another artifact", refer=self.named[0])
            return self._about(self.named[0], "revision")
        if self.creates:
            return self._new(self.c.task, "asks for a new artifact", refer=self._pointed())
        if self.edits or self.points:
            return self._about(self._edit_target(), "revision")
        return self._new(self.c.task, "no edit or pointer to an artifact of the thread")

    # -- rules ---------------------------------------------------------------------------------

    def _explicit(self) -> TurnDecision:
        task = self.c.task
        same = task if task in self.artifacts else None
        if same and self.asks and not self.creates:
            return self._about(same, "question")
        if same and (self.edits or self.points or self.named == [same]) and not self.creates:
            return self._about(same, "revision")
        refer = next((t for t in self.named if t != task), None) or self._from_earlier()
        return self._new(task, f"{task} chosen explicitly", refer=refer)

    def _confident(self) -> TurnDecision:
        """Rules 4 and 5 for a classification that decided: another family is new, this one revises."""
        wanted = self.family(self.c.task)
        named_same = [t for t in self.named if self.family(t) == wanted]
        if self.named and not named_same:
            return self._new(self.c.task, "asks for another kind of artifact", refer=self.named[0])
        if named_same:
            if self.creates:
                return self._new(self.c.task, "asks for another artifact of this kind", refer=named_same[0])
            return self._about(named_same[0], "revision")
        same_family = [t for t in self.artifacts if self.family(t) == wanted]
        if not same_family:
            return self._new(self.c.task, "asks for another kind of artifact", refer=self._from_earlier())
        if self.creates or not (self.edits or self.points):
            return self._new(self.c.task, "asks for a new artifact", refer=self._pointed())
        target = (
            self.c.task
            if self.c.task in self.artifacts
            else max(same_family, key=lambda t: self.artifacts[t]["turn"])
        )
        return self._about(target, "revision")

    def _pointed(self) -> str | None:
        """The artifact a new request of the same kind is made from ("write unit tests for it")."""
        if _DISTINCT.search(self.text):
            return None
        return self.latest if self.points or _CONVERT.search(self.text) else None

    def _from_earlier(self) -> str | None:
        """The artifact a new request of another kind is made from ("README for the CLI")."""
        if self._pointed() is not None or _FROM_EARLIER.search(self.text) and not _DISTINCT.search(self.text):
            return self.latest
        return None

    def _question_target(self) -> str:
        if self.named:
            return self.named[0]
        if self.confident and self.c.task in self.artifacts:
            return self.c.task
        return self._edit_target()

    def _edit_target(self) -> str:
        """The artifact an unnamed edit is about: the classification's, the most alike, the latest."""
        if self.confident and self.c.task in self.artifacts:
            return self.c.task
        if self.helper is not None and len(self.artifacts) > 1:
            best = max(self.artifacts, key=self._sim)
            if self._more_alike(best):
                return best
        return self.latest

    @cached_property
    def _kinds(self) -> frozenset[str]:
        """The words that name kinds of artifact (shape and reference signals share them)."""
        return _type_words(self.config)

    @cached_property
    def _thread_topics(self) -> frozenset[str]:
        return _thread_topics(self.artifacts, self._kinds)

    @cached_property
    def _request_probabilities(self) -> dict[str, float]:
        """The semantic layer's task probabilities for the whole turn (signals and targets share it)."""
        return self.helper.task_probabilities(self.text) if self.helper is not None else {}

    def _by_family(self, probabilities: Mapping[str, float]) -> dict[str, float]:
        by_family: dict[str, float] = {}
        for task, p in probabilities.items():
            by_family[self.family(task)] = by_family.get(self.family(task), 0.0) + p
        return by_family

    @cached_property
    def _sims(self) -> dict[str, float]:
        """How alike the turn is to each artifact's request (each embedding is computed once)."""
        if self.helper is None:
            return dict.fromkeys(self.artifacts, 0.0)
        return {t: float(self.helper.similarity(self.text, a["request"])) for t, a in self.artifacts.items()}

    def _sim(self, task: str) -> float:
        return self._sims[task]

    def _more_alike(self, task: str) -> bool:
        return task != self.latest and self._sim(task) - self._sim(self.latest) >= SIMILAR_MARGIN

    # -- results -------------------------------------------------------------------------------

    def _about(self, task: str, kind: Literal["revision", "question"]) -> TurnDecision:
        turn = self.artifacts[task]["turn"]
        verb = "revises" if kind == "revision" else "asks about"
        return TurnDecision(kind, task, task, turn, False, f"{verb} the {task} from turn {turn}")

    def _new(self, task: str, why: str, *, refer: str | None = None) -> TurnDecision:
        if refer is None:
            return TurnDecision("new", task, None, None, False, why)
        turn = self.artifacts[refer]["turn"]
        return replace(
            TurnDecision("new", task, refer, turn, True, why),
            reason=f"{why}; the {refer} from turn {turn} goes along as reference",
        )
