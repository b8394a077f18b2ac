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
    """Messages for Ollama's /api/chat; a repair adds the rejected reply and the validator's error."""
    messages = [
        {"role": "system", "content": system_prompt(route)},
        {"role": "user", "content": request_prompt(state, route)},
    ]
    validation = state.get("validation") or {}
    if repair and state.get("reply"):
        messages.append({"role": "assistant", "content": state.get("reply") or ""})
        messages.append({"role": "user", "content": repair_prompt(str(validation.get("error")))})
    return messages
