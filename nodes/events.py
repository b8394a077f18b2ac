"""The custom stream events nodes emit; the CLI, the chat UI and Studio all read these."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

Level = Literal["info", "warning", "error"]


class StatusEvent(TypedDict):
    """A step the user should see: "Loading mermaid-mistral (first time ~30-60 s)..."."""

    kind: Literal["status"]
    node: str
    message: str
    level: Level
    model: NotRequired[str]
    model_status: NotRequired[str]
    elapsed_s: NotRequired[float]
    expected_s: NotRequired[float]
    """A load's median measured time on this machine: elapsed_s against it is the progress."""
    progress: NotRequired[float]
    """0..1, for a progress bar (a load against its usual time, a pull by bytes)."""


class TokenEvent(TypedDict):
    """A piece of a model's reply as it streams."""

    kind: Literal["token"]
    text: str
    source: Literal["local", "cloud"]


Result = Callable[[dict[str, Any]], None]
_SINK: ContextVar[tuple[StreamWriter, Result] | None] = ContextVar("modelyard_event_sink", default=None)


@contextmanager
def events_to(sink: StreamWriter, result: Result) -> Iterator[None]:
    """Within it (and in the tasks it starts), nodes send their events to `sink`, the response to `result`.

    ModelRouter.stream takes the events this way rather than through LangGraph's "custom"
    stream mode, whose concurrent streaming costs ~1 ms per request (a waiter task per event).
    Studio, which runs the graph itself, sets no sink: the events go to its stream as before.
    """
    token = _SINK.set((sink, result))
    try:
        yield
    finally:
        _SINK.reset(token)


def writer_for(runtime: Runtime[Any]) -> StreamWriter:
    """Where a node's events go: the caller's sink (`events_to`), else LangGraph's stream."""
    taken = _SINK.get()
    return taken[0] if taken is not None else runtime.stream_writer


def hand_over(response: dict[str, Any]) -> None:
    """Give the caller's `result` (`events_to`) finalize's response the moment it exists.

    Its "updates" chunk is not enough: with durability="exit" the checkpoint is written after
    the last node, and a failed write is raised before LangGraph emits that node's update.
    The artifact must still reach the user.
    """
    taken = _SINK.get()
    if taken is not None:
        taken[1](response)


def emit_status(
    writer: StreamWriter,
    node: str,
    message: str,
    *,
    level: Level = "info",
    model: str | None = None,
    model_status: str | None = None,
    elapsed_s: float | None = None,
    expected_s: float | None = None,
    progress: float | None = None,
) -> None:
    """Send one status line to whoever is streaming the run."""
    event = StatusEvent(kind="status", node=node, message=message, level=level)
    if model is not None:
        event["model"] = model
    if model_status is not None:
        event["model_status"] = model_status
    if elapsed_s is not None:
        event["elapsed_s"] = round(elapsed_s, 3)
    if expected_s is not None:
        event["expected_s"] = round(expected_s, 3)
    if progress is not None:
        event["progress"] = round(progress, 3)
    writer(event)


class TokenStream:
    """Forwards streamed text as token events, coalescing pieces that arrive within 20 ms.

    A real model emits a token every ~30 ms, so each still gets its own event; a burst
    (a fast server, a buffered read) becomes one event instead of one cross-thread
    wake-up of the stream queue per piece.
    """

    INTERVAL_S = 0.02

    def __init__(self, writer: StreamWriter, source: Literal["local", "cloud"]) -> None:
        self._writer = writer
        self._source = source
        self._pending: list[str] = []
        self._last = 0.0

    def __call__(self, text: str) -> None:
        """Take one piece of text; emit the batch when the interval has passed."""
        self._pending.append(text)
        now = time.monotonic()
        if now - self._last >= self.INTERVAL_S:
            self._last = now
            self.flush()

    def flush(self) -> None:
        """Emit whatever is pending (call once the stream ends)."""
        if self._pending:
            self._writer(TokenEvent(kind="token", text="".join(self._pending), source=self._source))
            self._pending.clear()
