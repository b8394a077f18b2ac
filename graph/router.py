"""ModelRouter: the seed's face over the graph. It runs the graph; it does not duplicate it."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from config.loader import load_config
from config.schema import AppConfig, UnknownTaskError
from graph.builder import Graph, compile_graph
from graph.checkpoint import close_checkpointer, open_checkpointer
from nodes.events import StatusEvent, TokenEvent
from nodes.response import ModelResponse
from nodes.state import RequestIn
from services import Context, Services, install, uninstall
from usage.row import UsageRow

log = logging.getLogger(__name__)
__all__ = ["Event", "ModelRouter", "UnknownTaskError"]
Event = StatusEvent | TokenEvent


class ModelRouter:
    """Route artifact requests through the graph, with checkpoints and usage stats."""

    def __init__(self, config: AppConfig | None = None, *, services: Services | None = None) -> None:
        self.config = config or (services.config if services else load_config())
        self._services = services
        self._owns_services = services is None
        self._force_local: bool | None = None
        self.context = Context(config_path=str(self.config.source), data_dir=str(self.config.data_dir))
        self._saver: AsyncSqliteSaver | None = None
        self._graph: Graph | None = None

    async def __aenter__(self) -> ModelRouter:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Build the process's services and open the checkpoint database."""
        if self._services is None:
            self._services = Services.create(self.config)
        install(self.context, self._services)
        self._saver = await open_checkpointer(self.config.data_dir)
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
        """Run one request to the end and return its response."""
        response: ModelResponse | None = None
        async for item in self.stream(prompt, task_type=task_type, thread_id=thread_id):
            if isinstance(item, ModelResponse):
                response = item
        assert response is not None
        return response

    # -- streaming ---------------------------------------------------------------------------

    def check_task(self, task_type: str | None) -> None:
        """Raise UnknownTaskError for a task type the config does not route."""
        self.config.check_task(task_type)

    async def stream(
        self,
        prompt: str,
        *,
        task_type: str | None = None,
        thread_id: str | None = None,
        force_local: bool | None = None,
    ) -> AsyncIterator[Event | ModelResponse]:
        """Yield status and token events as the graph runs, then the ModelResponse."""
        self.check_task(task_type)
        thread_id = thread_id or uuid.uuid4().hex
        request = RequestIn(
            prompt=prompt,
            task_type=task_type,
            force_local=self._force_local if force_local is None else force_local,
        )
        run_config: Any = {"configurable": {"thread_id": thread_id}}
        response: dict[str, Any] | None = None
        started = time.time()
        try:
            # "updates" (not "values"): only finalize's output is needed, not a state copy per step.
            # durability="exit": one checkpoint write per request instead of one per node (10 -> 3 ms);
            # LangGraph still writes it when a node raises, so a failed run keeps its checkpoint.
            async for mode, chunk in self.graph.astream(
                request,
                run_config,
                context=self.context,
                stream_mode=["custom", "updates"],
                durability="exit",
            ):
                if mode == "custom":
                    yield cast(Event, chunk)
                elif "finalize" in chunk:
                    response = cast(dict[str, Any], chunk)["finalize"]["response"]
        except Exception as exc:  # a bug must not take the app down nor lose the usage row
            log.exception("request on thread %s crashed", thread_id)
            yield await self._record_crash(exc, request, thread_id, started)
            return
        assert response is not None, "the graph ended without finalize"
        yield ModelResponse.from_dict(response)

    async def _record_crash(
        self, exc: Exception, request: RequestIn, thread_id: str, started: float
    ) -> ModelResponse:
        task = request.get("task_type") or ""
        response = ModelResponse(
            content="",
            model_used=self.config.route(task).model if task else "",
            is_fallback=False,
            generation_time=round(time.time() - started, 3),
            tokens_used=0,
            error_message=f"internal error ({type(exc).__name__}: {exc}); see the log for details",
            fallback_reason=None,
            task_type=task,
            thread_id=thread_id,
        )
        await self.services.usage.record(
            UsageRow(
                thread_id=thread_id,
                task_type=task,
                model=response.model_used,
                provider="ollama",
                location="local",
                status="failed",
                fallback_reason=None,
                local_model=response.model_used or None,
                load_time_s=None,
                first_token_s=None,
                generation_time_s=response.generation_time,
                input_tokens=None,
                output_tokens=None,
                validation=None,
                validation_error=None,
                attempts=0,
                error_message=response.error_message,
            )
        )
        return response
