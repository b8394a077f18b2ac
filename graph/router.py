"""ModelRouter: the seed's face over the graph. It runs the graph; it does not duplicate it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver

from config.database_url import secret_values
from config.loader import load_config
from config.redaction import redact
from config.schema import AppConfig, UnknownTaskError
from graph.builder import Graph, compile_graph
from graph.checkpoint import BUSY_TIMEOUT_S, close_checkpointer, open_checkpointer
from graph.storage import flat
from nodes.events import Result, StatusEvent, TokenEvent, events_to
from nodes.prompt_check import BadPromptError, check_prompt
from nodes.response import ModelResponse
from nodes.state import RequestIn
from services import Context, Services, install, uninstall
from usage.errors import UsageStoreError
from usage.row import UsageRow

log = logging.getLogger(__name__)
__all__ = ["BadPromptError", "Event", "ModelRouter", "UnknownTaskError"]
Event = StatusEvent | TokenEvent


class ModelRouter:
    """Route artifact requests through the graph, with checkpoints and usage stats."""

    def __init__(
        self,
        config: AppConfig | None = None,
        *,
        services: Services | None = None,
        checkpoint_busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.config = config or (services.config if services else load_config())
        self._services = services
        self._owns_services = services is None
        self._force_local: bool | None = None
        self._busy_timeout = checkpoint_busy_timeout
        self._secrets = secret_values(self.config)  # cloud keys and the database password
        # Our own key: another router with the same config must never reach (or close) our services.
        self.context = Context(
            config_path=str(self.config.source),
            data_dir=str(self.config.data_dir),
            router=uuid.uuid4().hex,
        )
        self._saver: BaseCheckpointSaver[str] | None = None
        self._graph: Graph | None = None

    async def __aenter__(self) -> ModelRouter:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Build the process's services and open the checkpoint database (SQLite, or PostgreSQL by URL)."""
        if self._services is None:
            self._services = Services.create(self.config)
        install(self.context, self._services)
        try:
            self._saver = await open_checkpointer(
                self.config.data_dir, busy_timeout=self._busy_timeout, database_url=self.config.database_url
            )
        except BaseException:
            await self.aclose()  # an unreachable database must not leave the services running
            raise
        self._graph = compile_graph(self._saver)

    async def aclose(self) -> None:
        """Close the checkpoint database and, if we built them, the services."""
        uninstall(self.context)
        if self._saver is not None:
            await close_checkpointer(self._saver)
            self._saver = None
        if self._services is not None and self._owns_services:
            await self._services.aclose()

    @property
    def graph(self) -> Graph:
        """The compiled graph with its checkpointer (after `open`)."""
        if self._graph is None:
            raise RuntimeError("ModelRouter is not open: use `async with ModelRouter(...)`")
        return self._graph

    @property
    def services(self) -> Services:
        """The services this router runs with (after `open`)."""
        if self._services is None:
            raise RuntimeError("ModelRouter is not open: use `async with ModelRouter(...)`")
        return self._services

    def reroute(self, config: AppConfig) -> None:
        """Serve the next requests with `config`'s task models and alternates (`models add` from the UI).

        Only the models may change: new or removed task types, examples or keywords change what
        the classifier learned, and other sections change clients built at start-up, so those
        need a restart (ValueError says which).
        """
        old, new = self.config.routing.tasks, config.routing.tasks
        fixed = {"model", "alternates"}
        if set(old) != set(new) or any(
            old[t].model_dump(exclude=fixed) != new[t].model_dump(exclude=fixed) for t in old
        ):
            raise ValueError("the task types themselves changed: restart modelyard to use them")
        routing = self.config.routing.model_copy(update={"tasks": new})
        # The file it came from is the one to edit next (a first `models add` copies the packaged one).
        self.config = self.config.model_copy(update={"routing": routing, "source": config.source})
        if self._services is not None:
            self._services.config = self.config

    # -- the seed's API ----------------------------------------------------------------------

    def get_model_for_task(self, task_type: str) -> str:
        """The local model that serves `task_type`."""
        self.check_task(task_type)
        return self.config.route(task_type).model

    def set_force_local_only(self, enabled: bool) -> None:
        """Never call a cloud model for the following requests (None-able per request)."""
        self._force_local = enabled

    def get_stats(self) -> list[dict[str, Any]]:
        """The per-model dashboard: total, successes, fallbacks, average time, tokens."""
        return [s.to_dict() for s in self.services.usage.dashboard()]

    async def generate(
        self, task_type: str | None, prompt: str, *, thread_id: str | None = None
    ) -> ModelResponse:
        """Run one request to the end and return its response (its events go nowhere)."""
        response: ModelResponse | None = None
        async for item in self._request(prompt, task_type=task_type, thread_id=thread_id, events=False):
            response = cast(ModelResponse, item)
        assert response is not None
        return response

    # -- streaming ---------------------------------------------------------------------------

    def check_task(self, task_type: str | None) -> None:
        """Raise UnknownTaskError for a task type the config does not route."""
        self.config.check_task(task_type)

    def stream(
        self,
        prompt: str,
        *,
        task_type: str | None = None,
        thread_id: str | None = None,
        force_local: bool | None = None,
        latency_budget_s: float | None = None,
    ) -> AsyncIterator[Event | ModelResponse]:
        """Yield status and token events as the graph runs, then the ModelResponse.

        `latency_budget_s`: how long the answer may wait to start (default: the task's own).

        Raises BadPromptError or UnknownTaskError before anything is written (no usage row, no
        checkpoint). Otherwise every request ends in one ModelResponse and one usage row.
        """
        return self._request(
            prompt,
            task_type=task_type,
            thread_id=thread_id,
            force_local=force_local,
            latency_budget_s=latency_budget_s,
            events=True,
        )

    async def _request(
        self,
        prompt: str,
        *,
        task_type: str | None,
        thread_id: str | None,
        events: bool,
        force_local: bool | None = None,
        latency_budget_s: float | None = None,
    ) -> AsyncIterator[Event | ModelResponse]:
        """`stream`, with the events (`events`) or only the ModelResponse."""
        check_prompt(prompt, self.config.routing.max_prompt_bytes)
        self.check_task(task_type)
        thread_id = thread_id or uuid.uuid4().hex
        request = RequestIn(
            prompt=prompt,
            task_type=task_type,
            force_local=self._force_local if force_local is None else force_local,
            latency_budget_s=latency_budget_s,
        )
        run_config: Any = {"configurable": {"thread_id": thread_id}}
        results: list[dict[str, Any]] = []  # finalize's response, the moment it exists
        classified: dict[str, Any] = {}  # classify_task's update: task, model, the usage row's id
        started = time.time()
        run = self._run_streaming if events else self._run_here
        try:
            # aclosing: a caller that stops reading (or is cancelled) ends the run at once.
            async with contextlib.aclosing(run(request, run_config, results.append)) as items:
                async for mode, chunk in items:
                    if mode == "custom":
                        yield cast(Event, chunk)
                    elif "classify_task" in chunk:
                        classified = dict(flat(cast(dict[str, Any], chunk)["classify_task"] or {}))
        except Exception as exc:
            if results:
                # finalize ran (artifact and usage row done); only saving the thread failed.
                yield self._unsaved(ModelResponse.from_dict(results[0]), exc, thread_id)
                return
            # A bug must not take the app down nor lose the usage row.
            log.error("request on thread %s crashed\n%s", thread_id, self._traceback(exc))
            yield await self._record_crash(exc, request, thread_id, started, classified)
            return
        assert results, "the graph ended without finalize"
        yield ModelResponse.from_dict(results[0])

    def _astream(self, request: RequestIn, run_config: Any) -> AsyncIterator[dict[str, Any]]:
        # "updates" (not "values"): only classify_task's update is read (a crash's usage row), not
        # a state copy per step. durability="exit": one checkpoint write per request, not one per
        # node; LangGraph still writes it when a node raises.
        return self.graph.astream(
            request, run_config, context=self.context, stream_mode="updates", durability="exit"
        )

    async def _run_here(
        self, request: RequestIn, run_config: Any, result: Result
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """The graph's ("updates", chunk) items, run in the caller's task; its events are dropped.

        Finalize's response goes to `result` (`events_to`). With no events to deliver, nothing
        needs a task and a queue of its own (`_run_streaming`).
        """
        with events_to(lambda event: None, result):
            async for chunk in self._astream(request, run_config):
                yield "updates", chunk

    async def _run_streaming(
        self, request: RequestIn, run_config: Any, result: Result
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """The graph's ("custom", event) and ("updates", chunk) items, in order.

        The graph runs in a task of its own that sends both to one queue: events through
        `events_to` (LangGraph's "custom" mode costs ~1 ms per request), node updates from its
        stream; finalize's response goes to `result`. Raises what the graph raises. Closing this
        generator (the caller stopped or was cancelled) cancels the run.
        """
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop, here = asyncio.get_running_loop(), threading.get_ident()

        def send(event: Any) -> None:  # an event from a worker thread is handed to the loop
            if threading.get_ident() == here:
                queue.put_nowait(("custom", event))
            else:
                loop.call_soon_threadsafe(queue.put_nowait, ("custom", event))

        async def run() -> None:
            try:
                with events_to(send, result):
                    async for chunk in self._astream(request, run_config):
                        queue.put_nowait(("updates", chunk))
            finally:
                queue.put_nowait(("end", None))

        task = asyncio.create_task(run(), name="modelyard-graph")
        try:
            while (item := await queue.get())[0] != "end":
                yield item
            await task  # the graph's exception, if it raised
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _unsaved(self, response: ModelResponse, exc: Exception, thread_id: str) -> ModelResponse:
        why = redact(f"{type(exc).__name__}: {exc}", self._secrets)
        log.warning("thread %s was not saved: %s", thread_id, why)
        warning = (
            f"This conversation (thread {thread_id}) was not saved: {why}. The answer is complete, "
            "but a follow-up on this thread will not see it."
        )
        return replace(response, warning=warning)

    def _traceback(self, exc: Exception) -> str:
        # Rendered and scrubbed here: an exception's text may quote a key.
        return redact("".join(traceback.format_exception(exc)).rstrip(), self._secrets)

    async def _record_crash(
        self, exc: Exception, request: RequestIn, thread_id: str, started: float, classified: dict[str, Any]
    ) -> ModelResponse:
        task = str(classified.get("task") or request.get("task_type") or "")
        message = redact(f"{type(exc).__name__}: {exc}", self._secrets)
        response = ModelResponse(
            content="",
            model_used=str(classified.get("model") or (self.config.route(task).model if task else "")),
            is_fallback=False,
            generation_time=round(time.time() - started, 3),
            tokens_used=0,
            error_message=f"internal error ({message}); see the log for details",
            fallback_reason=None,
            task_type=task,
            thread_id=thread_id,
        )
        row = UsageRow.unmeasured(
            thread_id,
            task,
            response.model_used,
            "failed",
            generation_time_s=response.generation_time,
            error_message=response.error_message,
        )
        try:  # completes the row classify_task opened, if it got that far
            await self.services.usage.finish(classified.get("usage_id"), row)
        except UsageStoreError:
            log.exception("could not record usage for thread %s", thread_id)
        return response
