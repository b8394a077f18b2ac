"""Every prompt the models see, in one place: a system prompt per validator, revision and repair."""

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
    # A Markdown artifact may hold ``` blocks itself: a longer fence keeps them inside.
    ticks = "````" if "```" in body else "```"
    return f"{ticks}{FENCE_LANGUAGE[route.validator]}\n{body}\n{ticks}"


def revision_prompt(route: TaskRoute, previous: str, request: str) -> str:
    """A follow-up that revises the thread's last artifact."""
    return (
        f"Here is the current artifact:\n\n{_fenced(route, previous)}\n\n"
        f"Revise it as follows and reply with the whole revised artifact: {request}"
    )


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
