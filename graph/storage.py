"""How the State is kept in LangGraph's channels: the run's working fields together in one.

Every node and route sees one flat State (nodes/state.py). LangGraph, though, pays per channel
and per write on every step: it builds each node's input from every channel, versions each
written key, and restores every channel when a request starts. With a channel per key (42)
that was ~0.3 ms of a request's ~3 ms over a bare ChatOllama stream (bench `overhead_graph`).

So the request's own fields (RequestIn) and the conversation (Conversation) keep a channel per
key, and the run's 33 working fields (Run) live in the one `run` channel, whose reducer lays
each update over the fields it already holds. classify_task writes every Run field at the start
of a request, so nothing of the previous request's run survives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, cast

from nodes.state import RUN_KEYS, Conversation, RequestIn, Run, State


def merge_run(held: Run | None, update: Run) -> Run:
    """The `run` channel's reducer: `update`'s fields over the ones held."""
    return cast(Run, {**held, **update}) if held else update


class Stored(RequestIn, Conversation, total=False):
    """The State as LangGraph keeps it (what a checkpoint and Studio show)."""

    run: Annotated[Run, merge_run]
    """This request's working fields: its task, model, replies, verdicts, timings and response."""


def flat(stored: Mapping[str, Any]) -> State:
    """The State a node sees: the stored channels with the run's fields laid out beside them."""
    state = {key: value for key, value in stored.items() if key != "run"}
    state.update(stored.get("run") or {})
    return cast(State, state)


def packed(update: Mapping[str, Any]) -> dict[str, Any]:
    """A node's update to the flat State, as writes to the stored channels."""
    writes: dict[str, Any] = {}
    run: dict[str, Any] = {}
    for key, value in update.items():
        (run if key in RUN_KEYS else writes)[key] = value
    if run:
        writes["run"] = run
    return writes
