"""The turn decision: each rule of understanding.turns, the follow-up floor, and the graph wiring."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from config import AppConfig, load_config
from graph.router import ModelRouter
from graph.storage import flat
from tests.conftest import MERMAID, Rig
from understanding.classifier import TaskClassifier
from understanding.turns import (
    Signals,
    ThreadArtifact,
    TurnClass,
    TurnDecision,
    decide_turn,
    is_question,
    mentioned_tasks,
    normalise,
    without_mentions,
)
from understanding.turns_eval import accuracy, followup_report
from understanding.types import Classification, Layer

CODELLAMA = "codellama:13b-instruct-q4_K_M"
SLUGIFY = '```python\nimport re\n\n\ndef slugify(title: str) -> str:\n    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")\n```'


@dataclass
class Fixed:
    """A classifier stand-in that says one thing: each rule is tested apart from the classifier."""

    task: str
    layer: Layer = "keywords"
    confidence: float = 0.95
    alike: dict[str, float] | None = None  # request -> similarity to the prompt

    def classify_fast(
        self, prompt: str, *, explicit: str | None = None, last_task: str | None = None
    ) -> Classification:
        if explicit:
            return Classification(explicit, "explicit", 1.0)
        return Classification(self.task, self.layer, self.confidence)

    def similarity(self, a: str, b: str) -> float:
        return (self.alike or {}).get(b, 0.0)

    def turn_class(self, text: str, signals: Signals, shape: str = "") -> TurnClass | None:
        return None  # the hand-written rules decide, as before the learned model is ready

    def task_probabilities(self, text: str) -> dict[str, float]:
        return {}

    def target_probabilities(self, text: str) -> dict[str, float]:
        return {}

    def new_task_probabilities(self, text: str, thread: Sequence[str]) -> dict[str, float]:
        return {}


@pytest.fixture(scope="module")
def config() -> AppConfig:
    return load_config(env={})


def thread(*turns: tuple[str, str]) -> dict[str, ThreadArtifact]:
    """(task, request) per earlier turn, oldest first: the latest of each type, as finalize keeps them."""
    return {
        task: {"content": f"<{task}>", "turn": n, "model": "m", "request": request}
        for n, (task, request) in enumerate(turns, start=1)
    }


ERD = ("erd", "ERD for a blog with users and posts")
PAGE = ("html", "HTML landing page for the blog")


def decide(
    config: AppConfig,
    classifier: Fixed,
    prompt: str,
    artifacts: dict[str, ThreadArtifact],
    explicit: str | None = None,
) -> TurnDecision:
    last = max(artifacts, key=lambda t: artifacts[t]["turn"]) if artifacts else None
    return decide_turn(config, classifier, prompt, explicit=explicit, artifacts=artifacts, last_task=last)


def test_rule1_a_thread_without_artifacts_gets_a_new_request(config: AppConfig) -> None:
    got = decide(config, Fixed("erd", "carried_over", 0.6), "now add a TAGS table", {})
    assert (got.kind, got.task, got.target_task, got.reference) == ("new", "erd", None, False)


def test_rule2_an_explicit_task_forces_the_type_and_revises_only_on_an_edit(config: AppConfig) -> None:
    artifacts = thread(ERD, PAGE)
    edit = decide(config, Fixed("erd"), "make the header blue", artifacts, explicit="html")
    assert (edit.kind, edit.task, edit.target_turn) == ("revision", "html", 2)
    fresh = decide(config, Fixed("erd"), "A page for my bakery", artifacts, explicit="html")
    assert (fresh.kind, fresh.task) == ("new", "html")
    other = decide(config, Fixed("erd"), "Something for my bakery", thread(ERD), explicit="code")
    assert (other.kind, other.task, other.reference) == ("new", "code", False)


@pytest.mark.parametrize(
    ("prompt", "asks"),
    [
        ("why does the ERD have a join table?", True),
        ("What does the posts_tags table do", True),
        ("in the ERD, can a user have zero posts?", True),
        ("could you explain the header?", True),
        ("can you add a TAGS table?", False),  # a request phrased as a question
        ("can we rename users to members?", False),
        ("what if we add an audit log?", False),  # a suggestion, i.e. an edit
        ("now add a TAGS table", False),
    ],
)
def test_rule3_question_forms(prompt: str, asks: bool) -> None:
    assert is_question(normalise(prompt)) is asks


def test_rule3_a_question_is_about_the_artifact_it_names_else_the_latest(config: AppConfig) -> None:
    artifacts = thread(ERD, PAGE)
    named = decide(
        config, Fixed("html", "carried_over", 0.6), "why does the ERD have a join table?", artifacts
    )
    assert (named.kind, named.task, named.target_turn) == ("question", "erd", 1)
    latest = decide(config, Fixed("html", "carried_over", 0.6), "why is it so slow to load?", artifacts)
    assert (latest.kind, latest.task, latest.target_turn) == ("question", "html", 2)


def test_rule4_a_confident_other_family_is_a_new_request_without_the_artifact(config: AppConfig) -> None:
    got = decide(config, Fixed("code"), "Write a Python function that slugifies post titles", thread(ERD))
    assert (got.kind, got.task, got.target_task, got.reference) == ("new", "code", None, False)


def test_rule4_a_new_request_that_points_at_an_artifact_takes_it_as_reference(config: AppConfig) -> None:
    got = decide(config, Fixed("jira"), "break this page into tickets", thread(ERD, PAGE))
    assert (got.kind, got.task, got.target_task, got.target_turn, got.reference) == (
        "new",
        "jira",
        "html",
        2,
        True,
    )
    sql = decide(config, Fixed("code", "semantic", 0.7), "write the SQL for this schema", thread(ERD))
    assert (sql.kind, sql.task, sql.target_task, sql.reference) == ("new", "code", "erd", True)


def test_rule5_a_named_artifact_is_revised_even_after_another_type(config: AppConfig) -> None:
    got = decide(config, Fixed("erd"), "go back to the ERD and add a TAGS table", thread(ERD, PAGE))
    assert (got.kind, got.task, got.target_turn) == ("revision", "erd", 1)
    # "an ERD" names no artifact of the thread: a new one.
    another = decide(config, Fixed("erd"), "an ERD for a pharmacy", thread(ERD, PAGE))
    assert (another.kind, another.task) == ("new", "erd")


@pytest.mark.parametrize(
    ("thread_tasks", "prompt", "named"),
    [
        (("erd", "code"), "in the ddl, winner_team_id needs to be nullable", "code"),
        (("architecture", "code"), "add a dead letter queue to the terraform", "code"),
        (("code", "documentation"), "what does the -xdev in the one-liner do?", "code"),
        (("documentation", "mermaid"), "the explanation has that wrong", "documentation"),
    ],
)
def test_the_forms_an_artifact_takes_name_it(
    config: AppConfig, thread_tasks: tuple[str, ...], prompt: str, named: str
) -> None:
    # DDL, terraform and a one-liner are code; an explanation is a document ("explain X" is one).
    artifacts: dict[str, ThreadArtifact] = {
        task: {"content": "", "turn": turn, "model": "m", "request": task}
        for turn, task in enumerate(thread_tasks, start=1)
    }
    assert mentioned_tasks(config, prompt, artifacts) == [named]


def test_rule6_an_unnamed_edit_revises_the_latest_or_the_more_alike(config: AppConfig) -> None:
    carried = Fixed("erd", "carried_over", 0.6)
    assert decide(config, carried, "now add a TAGS table", thread(ERD)).kind == "revision"
    # The classifier only carries the last task over (the page); the request resembles the ERD's.
    alike = Fixed("html", "carried_over", 0.6, alike={ERD[1]: 0.5, PAGE[1]: 0.1})
    got = decide(config, alike, "add a TAGS table with a many-to-many to posts", thread(ERD, PAGE))
    assert (got.kind, got.task) == ("revision", "erd")
    # A semantic match of a bare instruction does not outvote it: "put redis ..." is an edit.
    weak = Fixed("code", "semantic", 0.58)
    arch = thread(("architecture", "architecture diagram of our AWS setup"))
    assert decide(config, weak, "put redis between the api and the db", arch).kind == "revision"


def test_rule7_anything_else_is_new(config: AppConfig) -> None:
    got = decide(config, Fixed("erd", "carried_over", 0.6), "ERD for a pharmacy", thread(ERD))
    assert (got.kind, got.task) == ("new", "erd")


@dataclass
class Learned(Fixed):
    """A stand-in whose learned parts answer: the turn model's class and the task probabilities."""

    turn: TurnClass = "new"
    probabilities: dict[str, float] | None = None

    def turn_class(self, text: str, signals: Signals, shape: str = "") -> TurnClass | None:
        return self.turn

    def task_probabilities(self, text: str) -> dict[str, float]:
        return self.probabilities or {}


def test_a_new_requests_type_comes_from_its_words_when_the_thread_guessed(config: AppConfig) -> None:
    unsure = Learned("erd", "carried_over", 0.6, probabilities={"code": 0.8, "erd": 0.2})
    got = decide(config, unsure, "generate the django models for it", thread(ERD))
    assert (got.kind, got.task, got.decided_by, got.confidence) == ("new", "code", "semantic", 0.8)


def test_the_same_for_another_subject_takes_the_referred_type(config: AppConfig) -> None:
    confident = Learned("documentation", "semantic", 0.95, turn="new+reference")
    got = decide(config, confident, "now do the same for the payments service", thread(ERD))
    assert (got.kind, got.task, got.reference, got.decided_by) == ("new", "erd", True, "carried_over")


def test_another_one_of_the_kind_takes_the_referred_type(config: AppConfig) -> None:
    unsure = Learned("erd", "carried_over", 0.6, turn="new+reference", probabilities={"planning": 0.9})
    got = decide(config, unsure, "and the android one?", thread(("tasks", "checklist for the iOS release")))
    assert (got.kind, got.task, got.reference) == ("new", "tasks", True)


@dataclass
class NewHead(Learned):
    """A stand-in whose turn model's new-request head answers too."""

    head: dict[str, float] | None = None

    def new_task_probabilities(self, text: str, thread: Sequence[str]) -> dict[str, float]:
        return self.head or {}


def test_a_new_requests_type_weighs_what_follow_ups_like_it_asked_for(config: AppConfig) -> None:
    # The semantic layer reads "write cypress tests for the form" as a task list; follow-ups say code.
    learned = NewHead("html", "semantic", 0.95, probabilities={"tasks": 0.7, "code": 0.3}, head={"code": 0.9})
    got = decide(config, learned, "write cypress tests for the form", thread(PAGE))
    assert (got.kind, got.task, got.decided_by) == ("new", "code", "semantic")


@pytest.mark.parametrize(
    "prompt",
    ["funnier", "a bit shorter pls", "could we swap the photo section for a map?", "can you make it blue"],
)
def test_a_polite_or_one_word_edit_revises_whatever_the_model_says(config: AppConfig, prompt: str) -> None:
    for turn in ("new", "question"):
        got = decide(config, Learned("html", "semantic", 0.5, turn=turn), prompt, thread(PAGE))
        assert (got.kind, got.task) == ("revision", "html"), (turn, got)


def test_a_polite_request_for_another_artifact_stays_new(config: AppConfig) -> None:
    got = decide(
        config, Learned("planning", "keywords", 0.95), "can you put these into a sprint plan?", thread(PAGE)
    )
    assert got.kind == "new"


def test_a_turn_the_classification_already_explains_records_no_override(config: AppConfig) -> None:
    got = decide(
        config, Learned("code", "keywords", 0.95), "write a python function that slugifies", thread(ERD)
    )
    assert (got.task, got.decided_by, got.confidence) == ("code", None, None)


# -- the labelled follow-ups -----------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(config: AppConfig) -> Iterator[TaskClassifier]:
    classifier = TaskClassifier(config)
    assert classifier.wait_ready(60), classifier.load_error
    yield classifier


# Measured on the blind held-out split (the sixth set, written by someone who had seen only
# LABELS.md, never tuned on): 96.8% (150/155) in stop 19, the target being 95%; see the closing
# notes of issue 9. The dev split (tuned on, so not the number to report) measured 97.3% (217/223).
# Each floor sits a few cases below its measurement, so a regression fails while a one-case wobble
# does not; the held-out one is also the target.
HELDOUT_FLOOR = 0.95
DEV_FLOOR = 0.945


def test_heldout_followups_stay_above_the_measured_floor(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    assert accuracy(config, classifier, "heldout") >= HELDOUT_FLOOR, followup_report(config, classifier)


def test_dev_followups_stay_above_the_measured_floor(config: AppConfig, classifier: TaskClassifier) -> None:
    assert accuracy(config, classifier, "dev") >= DEV_FLOOR, followup_report(config, classifier, split="dev")


# -- the learned turn model, as the graph uses it ----------------------------------------------


def learned(
    config: AppConfig, classifier: TaskClassifier, prompt: str, *turns: tuple[str, str]
) -> TurnDecision:
    artifacts = thread(*turns)
    last = max(artifacts, key=lambda t: artifacts[t]["turn"])
    return decide_turn(config, classifier, prompt, explicit=None, artifacts=artifacts, last_task=last)


def test_the_learned_model_decides_once_ready(config: AppConfig, classifier: TaskClassifier) -> None:
    got = learned(config, classifier, "now add a TAGS table", ERD)
    assert (got.kind, got.task, got.target_turn) == ("revision", "erd", 1)
    assert classifier.turn_class("now add a TAGS table", {}) in (
        "new",
        "new+reference",
        "revision",
        "question",
    )


def test_going_back_to_an_older_artifact_by_name(config: AppConfig, classifier: TaskClassifier) -> None:
    got = learned(config, classifier, "go back to the ERD and add a TAGS table", ERD, PAGE)
    assert (got.kind, got.task, got.target_turn) == ("revision", "erd", 1)


def test_what_a_turn_asks_for_is_classified_without_what_it_refers_to(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    got = learned(config, classifier, "write the SQL CREATE TABLE statements for this ERD", ERD)
    assert (got.kind, got.task, got.reference, got.target_task) == ("new", "code", True, "erd")
    assert without_mentions(config, "write the sql for this erd", thread(ERD)) == "write the sql for"
    # "the SQL schema" is what is asked for: a family noun after "the" is not a mention.
    assert without_mentions(config, "the sql schema for this page", thread(PAGE)) == "the sql schema for"


def test_the_same_for_another_subject_keeps_the_type(config: AppConfig, classifier: TaskClassifier) -> None:
    arch = ("architecture", "architecture diagram of the orders service: api, queue, workers")
    got = learned(config, classifier, "now do the same for the payments service", arch)
    assert (got.kind, got.task, got.reference) == ("new", "architecture", True)


def test_an_unnamed_edit_goes_to_the_artifact_it_is_about(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    code = ("code", "python function that totals the invoices of a month")
    got = learned(config, classifier, "appointments need a vet_id foreign key", ERD, code)
    assert (got.kind, got.task) == ("revision", "erd")
    assert (
        max(
            classifier.target_probabilities("amounts must be Decimal, not float").items(),
            key=lambda kv: kv[1],
        )[0]
        == "code"
    )


def test_an_edit_naming_what_only_one_artifact_has_goes_to_it(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    artifacts = thread(
        ("architecture", "architecture of our notification system"), ("jira", "tickets for Q3")
    )
    artifacts["architecture"]["content"] = (
        "flowchart LR\n  api --> queue --> worker --> EmailProvider[email provider]"
    )
    got = decide_turn(
        config,
        classifier,
        "put an SMS gateway beside the email provider",
        explicit=None,
        artifacts=artifacts,
        last_task="jira",
    )
    assert (got.kind, got.task) == ("revision", "architecture")


def test_a_turn_that_says_it_is_unrelated_is_new_without_reference(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    got = learned(config, classifier, "btw I also need a post-mortem template, nothing to do with this", ERD)
    assert (got.kind, got.reference) == ("new", False)


def test_a_question_about_the_artifact(config: AppConfig, classifier: TaskClassifier) -> None:
    got = learned(config, classifier, "why is ORDER linked to CUSTOMER twice?", ERD, PAGE)
    assert (got.kind, got.task) == ("question", "erd")


def test_the_report_has_accuracies_and_a_kind_confusion_table(
    config: AppConfig, classifier: TaskClassifier
) -> None:
    report = followup_report(config, classifier, split="dev")
    assert report.startswith("follow-ups (dev, ")
    assert "expected \\ decided" in report
    assert all(kind in report for kind in ("new", "revision", "question"))


# -- through the graph -----------------------------------------------------------------------


def _chats(rig: Rig) -> list[list[dict[str, str]]]:
    return [r.body["messages"] for r in rig.ollama.requests if r.path == "/api/chat"]


async def test_a_new_request_after_an_erd_is_not_sent_as_a_revision(rig: Rig) -> None:
    rig.ollama.update_model(CODELLAMA, reply=SLUGIFY)
    async with ModelRouter(rig.config()) as router:
        erd = await rig.ask_with(router, "ERD for a blog with users and posts", task=None, thread="t")
        code = await rig.ask_with(
            router, "Write a Python function that slugifies post titles", task=None, thread="t"
        )
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "t"}})).values)
    assert erd.ok and code.task_type == "code" and code.model_used == CODELLAMA
    sent = "\n".join(m["content"] for m in _chats(rig)[-1])
    assert erd.content not in sent and "Revise it" not in sent
    assert "New request: code" in rig.statuses()
    # The thread keeps both artifacts, by type, with their turn and model.
    assert {t: (a["turn"], a["model"]) for t, a in state["artifacts"].items()} == {
        "erd": (1, MERMAID),
        "code": (2, code.model_used),
    }
    # The conversation goes along as earlier turns (the ERD itself is not repeated).
    roles = [m["role"] for m in _chats(rig)[-1]]
    assert roles == ["system", "user", "assistant", "user"]


async def test_a_referring_new_request_labels_the_artifact_as_reference(rig: Rig) -> None:
    async with ModelRouter(rig.config()) as router:
        erd = await rig.ask_with(router, "ERD for a blog with users and posts", task=None, thread="r")
        await rig.ask_with(router, "break this schema into jira tickets", task=None, thread="r")
    last = _chats(rig)[-1][-1]["content"]
    assert erd.content in last and last.startswith("Reference material (the erd artifact from turn 1")
    assert "Revise it" not in last
    assert any(
        s.startswith("New request: jira (with the ERD from turn 1 as reference)") for s in rig.statuses()
    )


async def test_the_same_for_another_subject_shows_who_chose_the_type(rig: Rig) -> None:
    async with ModelRouter(rig.config()) as router:
        await rig.ask_with(
            router, "architecture diagram of the orders service: api, queue, workers", task=None, thread="s"
        )
        again = await rig.ask_with(router, "now do the same for the payments service", task=None, thread="s")
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "s"}})).values)
    assert again.task_type == "architecture" and again.model_used == MERMAID
    decision = state["turn_decision"]
    assert (decision["kind"], decision["reference"], decision["target_task"]) == ("new", True, "architecture")
    assert state["classified_by"] == "carried_over"
    assert any(s.startswith("Task: architecture (") for s in rig.statuses())


async def test_a_question_is_answered_in_prose_and_counted_honestly(rig: Rig) -> None:
    rig.ollama.update_model(
        MERMAID,
        replies=[
            rig.ollama.model(MERMAID).reply,
            "Posts belong to one user: the foreign key is posts.user_id.",
        ],
    )
    async with ModelRouter(rig.config()) as router:
        erd = await rig.ask_with(router, "ERD for a blog with users and posts", task=None, thread="q")
        answer = await rig.ask_with(router, "why does a post have only one author?", task=None, thread="q")
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "q"}})).values)
    assert answer.ok and answer.prose and answer.task_type == "erd" and answer.model_used == MERMAID
    assert answer.content.startswith("Posts belong to one user")
    assert "Question about the ERD from turn 1 (answered in prose)" in rig.statuses()
    assert "Answer in prose: nothing to validate" in rig.statuses()
    assert not any(s.startswith("Mermaid invalid") for s in rig.statuses())
    question = _chats(rig)[-1]
    assert "answering a question" in question[0]["content"] and erd.content in question[-1]["content"]
    row = rig.usage_rows()[-1]
    assert (row["status"], row["validation"], row["model"], row["location"]) == (
        "success",
        None,
        MERMAID,
        "local",
    )
    # The answer is conversation, not the thread's ERD.
    assert state["artifacts"]["erd"]["content"] == erd.content
    assert state["history"][-1]["answer"].startswith("Posts belong to one user")


async def test_history_is_bounded_and_each_turn_shortened(rig: Rig) -> None:
    async with ModelRouter(rig.config()) as router:
        for n in range(5):
            await rig.ask_with(router, f"ERD for a blog, revision {n} " + "x" * 600, thread="h")
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "h"}})).values)
    assert [h["turn"] for h in state["history"]] == [3, 4, 5]
    assert all(len(h["prompt"]) <= 400 for h in state["history"])
    assert state["turn"] == 5 and list(state["artifacts"]) == ["erd"]
