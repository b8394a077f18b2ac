"""Build the chat messages a model receives: system prompt, the conversation, the turn's request."""

from __future__ import annotations

from config.schema import TaskRoute
from nodes.prompts import (
    QUESTION_SYSTEM_PROMPT,
    history_note,
    question_prompt,
    reference_prompt,
    repair_prompt,
    revision_prompt,
    system_prompt,
)
from nodes.state import State

Message = dict[str, str]


def is_question(state: State) -> bool:
    """Whether the turn asks about an artifact: its answer is prose, not an artifact to validate."""
    decision = state.get("turn_decision")
    return decision is not None and decision["kind"] == "question"


def request_prompt(state: State, route: TaskRoute) -> str:
    """The user's request, wrapped as the turn decided: revision, question or labelled reference.

    Only a revision is sent as "revise this"; a new request is sent as itself, with the artifact
    it refers to (if any) as reference material.
    """
    decision = state.get("turn_decision")
    prompt = state["prompt"]
    target_task = decision.get("target_task") if decision else None
    target = (state.get("artifacts") or {}).get(target_task or "")
    if decision is None or target_task is None or target is None:
        return prompt
    if decision["kind"] == "revision":
        return revision_prompt(route, target["content"], prompt)
    if decision["kind"] == "question":
        return question_prompt(route, target_task, target["turn"], target["content"], prompt)
    if decision["reference"]:
        return reference_prompt(target_task, target["turn"], target["content"], prompt)
    return prompt


def history_messages(state: State) -> list[Message]:
    """The thread's last turns as earlier chat turns, so "it" and "that one" read naturally.

    Bounded by the state (HISTORY_TURNS turns of HISTORY_CHARS each): a few hundred tokens at
    most beside the artifact, well inside any local model's context.
    """
    messages: list[Message] = []
    for past in state.get("history") or []:
        messages.append({"role": "user", "content": past["prompt"]})
        answer = past["answer"] or history_note(past["task"], past["turn"])
        messages.append({"role": "assistant", "content": answer})
    return messages


def chat_messages(state: State, route: TaskRoute, *, repair: bool) -> list[Message]:
    """Chat turns for a local or cloud model.

    A repair is one self-contained request that quotes the validator's error and the rejected
    artifact (the extracted one, whose line numbers the error uses) instead of replaying the
    whole rejected reply: half the context for a long page, and roles still alternate.
    """
    system = QUESTION_SYSTEM_PROMPT if is_question(state) else system_prompt(route)
    request = request_prompt(state, route)
    validation = state.get("validation") or {}
    if repair and validation and not validation.get("valid"):
        artifact = str(validation.get("artifact") or state.get("reply") or "")
        error = "\n".join(str(part) for part in (validation.get("error"), validation.get("details")) if part)
        request = repair_prompt(route, request, error, artifact)
        return [{"role": "system", "content": system}, {"role": "user", "content": request}]
    return [
        {"role": "system", "content": system},
        *history_messages(state),
        {"role": "user", "content": request},
    ]
