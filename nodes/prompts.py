"""Every prompt the models see, in one place: system prompts, revision, reference, question, repair."""

from __future__ import annotations

from config.schema import TaskRoute

_ONE_FENCE = "Reply with exactly one fenced code block and nothing else: no explanation before or after it."

SYSTEM_PROMPTS: dict[str, str] = {
    "mermaid": (
        "You are a software architect who writes Mermaid diagrams. "
        "Produce one valid Mermaid diagram for the request, starting with its diagram header "
        "(for example `erDiagram`, `flowchart TD`, `sequenceDiagram`, `classDiagram`). "
        f"{_ONE_FENCE} Use the language tag `mermaid`."
    ),
    "html": (
        "You are a front-end engineer. Produce one complete, self-contained HTML5 document "
        "(<!DOCTYPE html>, <html>, <head>, <body>) with inline CSS and no external scripts "
        f"unless the request asks for them. {_ONE_FENCE} Use the language tag `html`."
    ),
    "code": (
        "You are a senior engineer. Produce one complete, runnable source file for the request, "
        "in the language the request names (Python if it names none). "
        f"{_ONE_FENCE} Tag the block with the language name."
    ),
    "documentation": (
        "You are a technical writer. Produce one Markdown document with a top-level heading and "
        f"sections as the request needs. {_ONE_FENCE} Use the language tag `markdown`."
    ),
    "jira": (
        "You are an agile delivery lead. Break the request into JIRA tasks. Reply with one JSON "
        'object {"tasks": [...]} where each task has `summary`, `description`, '
        "`acceptance_criteria` (list of strings), `story_points` (integer) and optionally `type` "
        "and `priority`. Reply with the JSON only: no explanation before or after it."
    ),
}

_KIND_HINTS: dict[str, str] = {
    "er": " The diagram must be an entity-relationship diagram (`erDiagram`).",
    "flowchart": " The diagram must be a flowchart (`flowchart TD`).",
    "sequence": " The diagram must be a sequence diagram (`sequenceDiagram`).",
    "class": " The diagram must be a class diagram (`classDiagram`).",
    "architecture": " The diagram must be an architecture diagram (`architecture-beta`).",
    "document": "",
}

FENCE_LANGUAGE: dict[str, str] = {
    "mermaid": "mermaid",
    "html": "html",
    "code": "",
    "documentation": "markdown",
    "jira": "json",
}


def system_prompt(route: TaskRoute) -> str:
    """The system prompt for a task's validator, narrowed to the diagram kind it expects."""
    return SYSTEM_PROMPTS[route.validator] + _KIND_HINTS.get(route.expect_kind or "", "")


def _fenced(route: TaskRoute, body: str) -> str:
    return _fence(FENCE_LANGUAGE[route.validator], body)


def _fence(language: str, body: str) -> str:
    # A Markdown artifact may hold ``` blocks itself: a longer fence keeps them inside.
    ticks = "````" if "```" in body else "```"
    return f"{ticks}{language}\n{body}\n{ticks}"


def revision_prompt(route: TaskRoute, previous: str, request: str) -> str:
    """A follow-up that revises one of the thread's artifacts (of `route`'s task type)."""
    return (
        f"Here is the current artifact:\n\n{_fenced(route, previous)}\n\n"
        f"Revise it as follows and reply with the whole revised artifact: {request}"
    )


def reference_prompt(task: str, turn: int, material: str, request: str) -> str:
    """A new request that refers to an earlier artifact ("break this page into tickets").

    The earlier artifact is material to read, not the thing to produce: said in so many words,
    since a small model shown an artifact tends to hand it back revised.
    """
    return (
        f"Reference material (the {task} artifact from turn {turn} of this conversation; read it, "
        f"do not revise or repeat it):\n\n{_fence('', material)}\n\n"
        f"New request, answered with a new artifact of the kind asked for: {request}"
    )


QUESTION_SYSTEM_PROMPT = (
    "You are a senior engineer answering a question about an artifact of this conversation. "
    "Answer in a few short paragraphs of plain prose (Markdown allowed; quote only the lines you "
    "discuss). Do not rewrite, revise or repeat the whole artifact."
)


def question_prompt(route: TaskRoute, task: str, turn: int, artifact: str, question: str) -> str:
    """A question about one of the thread's artifacts, answered in prose."""
    return f"The {task} artifact from turn {turn}:\n\n{_fenced(route, artifact)}\n\nQuestion: {question}"


def history_note(task: str, turn: int) -> str:
    """What an earlier artifact turn says in the conversation sent to a model.

    The artifact itself is not repeated (it can be long, and the latest of each type is sent
    whole when a turn revises or refers to it); a bracketed note keeps the turns alternating.
    """
    return f"[Turn {turn}: delivered the {task} artifact; not repeated here.]"


_CHECKERS: dict[str, str] = {
    "mermaid": "the official Mermaid parser",
    "html": "an HTML5 parser",
    "code": "the language's parser",
    "documentation": "a Markdown check",
    "jira": "the JIRA task schema",
}


def repair_prompt(route: TaskRoute, request: str, error: str, artifact: str) -> str:
    """Ask a model to fix what the validator rejected, quoting the error and the rejected artifact."""
    reply_rule = "Reply with the corrected JSON only." if route.validator == "jira" else _ONE_FENCE
    return (
        f"The request was: {request}\n\n"
        f"Your answer is not valid. {_CHECKERS[route.validator]} rejected it:\n\n{error}\n\n"
        f"This is the artifact that was checked:\n\n{_fenced(route, artifact)}\n\n"
        f"Fix every error and reply with the whole corrected artifact, nothing left out. {reply_rule}"
    )
