"""One request in the chat: a step per graph node as it runs, the reply streamed, then the answer."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.step import StepDict, check_add_step_in_cot, stub_step

from config.schema import AppConfig, UnknownTaskError
from graph.router import Event
from nodes.events import StatusEvent
from nodes.prompt_check import BadPromptError
from nodes.response import ModelResponse
from ui import cl_typed
from ui.answer import answer_markdown, outcome
from ui.downloads import send_downloads
from ui.render import progress_bar

log = logging.getLogger(__name__)

# Nodes that produce a reply; a new step of one of them supersedes the reply streamed so far.
GENERATION_NODES = frozenset({"local_generate", "cloud_fallback"})
_PREFIX = {"info": "", "warning": "**Warning:** ", "error": "**Error:** "}
# The line a step ends with when the user stops its request (Chainlit then says "Task manually
# stopped."): nothing unvalidated is left behind, and the usage row stays "interrupted".
STOPPED = "**Stopped** by the user: nothing was delivered"


def _shape(line: str) -> str:
    """The line with its numbers blanked.

    Progress lines ("Loading X... 3 s", "Pulling X: 40%") share a shape, so each replaces the
    one before it instead of piling up.
    """
    return re.sub(r"\d+(\.\d+)?", "#", line)


class _StepWriter:
    """Writes a request's steps to the chat history one at a time, each step's latest state last.

    Not Step.send/update: each starts its own task writing the whole row, and those tasks run at
    once on the data layer's pool of SQLite connections and commit in any order. An earlier state
    (even the empty row `send` writes) could commit last and be all a reload shows.
    """

    def __init__(self) -> None:
        self._pending: dict[str, StepDict] = {}  # step id -> its latest state, not yet written
        self._task: asyncio.Task[None] | None = None

    def put(self, step: StepDict) -> None:
        self._pending[step["id"]] = step
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
            _writing.add(self._task)  # the loop keeps only a weak reference to a task
            self._task.add_done_callback(_writing.discard)

    async def _drain(self) -> None:
        data_layer = get_data_layer()  # type: ignore[no-untyped-call]
        while self._pending:
            step = self._pending.pop(next(iter(self._pending)))
            if data_layer is None:
                continue
            try:
                await data_layer.update_step(step)  # an upsert of the whole row
            except Exception:
                log.exception("cannot save the %s step to the chat history", step["name"])


_writing: set[asyncio.Task[None]] = set()


class RunView:
    """Turns the router's events into Chainlit steps and messages, in the order they happen."""

    def __init__(self, config: AppConfig, on_model_status: Callable[[], Awaitable[None]] | None = None):
        self._config = config
        self._on_model_status = on_model_status
        self._step: cl.Step | None = None
        self._node: str | None = None
        self._lines: list[str] = []
        self._shape = ""
        self._drawn_at = 0.0
        self._draft: cl.Message | None = None
        self._final_line: str | None = None
        self._history = _StepWriter()

    async def handle(self, event: Event) -> None:
        """Show one event: tokens go to the streamed reply, status lines to their node's step."""
        if event["kind"] == "token":
            if self._draft is None:
                self._draft = cl.Message(content="")
            await self._draft.stream_token(event["text"])
            return
        await self._status(event)

    async def _status(self, event: StatusEvent) -> None:
        node = event["node"]
        if node != self._node:
            await self._close_step()
            await self._open_step(node)
        assert self._step is not None
        line = _PREFIX.get(event["level"], "") + event["message"]
        shape = _shape(line)
        if "progress" in event:  # against this model's usual load time here, or a pull's bytes
            line = f"{line} {progress_bar(event['progress'])}"
        replacing = bool(self._lines) and shape == self._shape
        if replacing:
            self._lines[-1] = line
        else:
            self._lines.append(line)
        self._shape = shape
        # One line each: Chainlit renders paragraphs with pre-wrap, so a newline is a line break.
        self._step.output = "\n".join(self._lines)
        if event["level"] == "error":
            self._step.is_error = True
        now = time.monotonic()
        # Pull progress can come many times a second: redraw a replaced line at most 4 times a
        # second (the node's next line always redraws, so the last state is never lost).
        if not replacing or now - self._drawn_at >= 0.25:
            self._drawn_at = now
            await self._show(self._step)
        if node == "finalize":
            self._final_line = event["message"]
        if "model_status" in event and self._on_model_status is not None:
            await self._on_model_status()

    async def _open_step(self, node: str) -> None:
        if node in GENERATION_NODES:
            await self._drop_draft()
        parent = cl.context.current_step
        step = cl.Step(
            name=node,
            type="llm" if node in GENERATION_NODES else "tool",
            parent_id=parent.id if parent else None,
            show_input=False,
            default_open=True,
        )
        step.start = cl_typed.now()
        await self._show(step, new=True)
        self._step, self._node, self._lines, self._shape = step, node, [], ""

    async def _close_step(self) -> None:
        if self._step is not None:
            self._step.end = cl_typed.now()
            await self._show(self._step)
        self._step, self._node = None, None

    async def _show(self, step: cl.Step, *, new: bool = False) -> None:
        """Draw the step as it is now, and save that state in the chat history after any earlier one."""
        self._history.put(step.to_dict())  # its own dict: the data layer rewrites some fields
        shown = step.to_dict() if check_add_step_in_cot(step) else stub_step(step)
        emitter = cl.context.emitter
        await (emitter.send_step(shown) if new else emitter.update_step(shown))

    async def _drop_draft(self) -> None:
        if self._draft is not None:
            await cl_typed.remove(self._draft)
            self._draft = None

    async def finish(self, response: ModelResponse) -> None:
        """Replace the streamed draft with the validated artifact and the closing line."""
        await self._close_step()
        await self._drop_draft()
        line = self._final_line or response.error_message or "No artifact was produced."
        route = self._config.routing.tasks.get(response.task_type)
        # A question's answer is prose: shown as Markdown, not drawn as the artifact it is about.
        validator = "documentation" if response.prose else (route.validator if route else None)
        content = answer_markdown(response, validator, line)
        failed = outcome(response) == "failed"
        message = cl.ErrorMessage(content=content) if failed else cl.Message(content=content)
        await cl_typed.send(message)
        await send_downloads(message, response, validator)

    async def stop(self) -> None:
        """The user pressed Stop: the open step says so and ends, and the unchecked draft goes."""
        if self._step is not None:
            self._lines.append(STOPPED)
            self._step.output = "\n".join(self._lines)
        await self._close_step()
        await self._drop_draft()

    async def fail(self, exc: Exception) -> None:
        """Show a request that could not run at all; the traceback goes to the log, not the chat."""
        if isinstance(exc, BadPromptError):  # e.g. over routing.max_prompt_bytes: no model saw it
            text = f"Not sent to any model: {exc}"
        elif isinstance(exc, UnknownTaskError):
            text = f"The request failed: {exc}"
        else:
            log.error("request failed in the UI", exc_info=exc)
            text = f"The request failed: internal error ({type(exc).__name__}: {exc}); see the server log"
        if self._step is not None:
            self._step.is_error = True
        await self._close_step()
        await self._drop_draft()
        await cl_typed.send(cl.ErrorMessage(content=text))
