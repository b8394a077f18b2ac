"""ensure_model: make sure the task's local model is loaded, loading (or pulling) it once.

A model cooling down after a failed load or a timeout is skipped at once (the cool-down says
for how long and why); one that failed to load is used after all when Ollama shows it resident.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from lifecycle.loading import LoadEvent, load_with_progress
from nodes.attempts import failed_attempt
from nodes.events import emit_status
from nodes.state import State
from providers.errors import REASON_TEXT, ProviderError
from providers.ollama_http import canonical
from providers.ollama_types import ModelStatus
from services import Context, services_for

NODE = "ensure_model"


async def ensure_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Report the model's status and load it when needed; a failure becomes a fallback reason."""
    svc = await services_for(runtime.context)
    model, writer = state["model"], runtime.stream_writer

    def report(event: LoadEvent) -> None:
        emit_status(
            writer,
            NODE,
            event.message,
            model=model,
            model_status="loading",
            elapsed_s=event.elapsed_s,
            expected_s=event.expected_s,
            progress=event.progress,
        )

    def notify(message: str) -> None:  # the memory budget's unloads and waits
        emit_status(writer, NODE, message, model=model, model_status="loading")

    try:
        cooling = await asyncio.to_thread(svc.health.cooling, canonical(model))
        # Ollama's /api/ps (at most a second old) is the truth: it evicts models on its own, and
        # when it is down this raises server_down rather than claiming the model is ready. A model
        # that timed out is skipped even when resident; one that failed to load is fine once it is.
        if (cooling is None or cooling.reason != "timeout") and await svc.ollama.is_loaded(model):
            if cooling is not None:
                await asyncio.to_thread(svc.health.record_success, canonical(model))
            emit_status(writer, NODE, f"{model} is ready", model=model, model_status="ready")
            return {"model_status": ModelStatus.READY.value}
        if cooling is not None:
            raise ProviderError(
                "timeout" if cooling.reason == "timeout" else "load_failed",
                f"skipped for {cooling.left_s(svc.health.now()):.0f} s more (cool-down after "
                f"{cooling.failures} failure{'s' if cooling.failures > 1 else ''}: {cooling.message})",
            )
        load_s = await load_with_progress(
            svc.ollama,
            svc.health,
            await svc.usage.load_times_async(model),
            model,
            keep_alive=svc.config.keep_alive_for(state.get("task")),
            allow_pull=svc.config.ollama.allow_pull,
            report=report,
            notify=notify,
        )
    except ProviderError as exc:
        emit_status(
            writer,
            NODE,
            f"Local model unavailable ({exc.reason}: {REASON_TEXT[exc.reason]}): {exc.message}",
            level="warning",
            model=model,
            model_status=ModelStatus.ERROR.value,
        )
        return {
            "model_status": ModelStatus.ERROR.value,
            "fallback_reason": exc.reason,
            "error": exc.message,
            "attempts": [*state.get("attempts", []), failed_attempt("local", "ollama", model, exc)],
        }
    emit_status(writer, NODE, f"{model} ready (loaded in {load_s:.1f} s)", model=model, model_status="ready")
    return {"model_status": ModelStatus.READY.value, "load_s": load_s}
