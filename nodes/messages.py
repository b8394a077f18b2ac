"""Build the chat messages a model receives: system prompt, thread context, repair request."""

from __future__ import annotations

from config.schema import TaskRoute
from nodes.prompts import repair_prompt, revision_prompt, system_prompt
from nodes.state import State


def request_prompt(state: State, route: TaskRoute) -> str:
    """The user's request, wrapped as a revision when the thread has an artifact to revise."""
    previous = state.get("last_artifact")
    if previous:
        return revision_prompt(route, previous, state["prompt"])
    return state["prompt"]


def chat_messages(state: State, route: TaskRoute, *, repair: bool) -> list[dict[str, str]]:
    """Chat turns for a local or cloud model.

    A repair is one self-contained request that quotes the validator's error and the rejected
    artifact (the extracted one, whose line numbers the error uses) instead of replaying the
    whole rejected reply: half the context for a long page, and roles still alternate.
    """
    request = request_prompt(state, route)
    validation = state.get("validation") or {}
    if repair and validation and not validation.get("valid"):
        artifact = str(validation.get("artifact") or state.get("reply") or "")
        error = "\n".join(str(part) for part in (validation.get("error"), validation.get("details")) if part)
        request = repair_prompt(route, request, error, artifact)
    return [{"role": "system", "content": system_prompt(route)}, {"role": "user", "content": request}]
