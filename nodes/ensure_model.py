"""ensure_model: make sure the task's local model is loaded, loading (or pulling) it once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from nodes.attempts import failed_attempt
from nodes.events import emit_status
from nodes.state import State
from providers.errors import REASON_TEXT, ProviderError
from providers.ollama import OllamaClient
from providers.ollama_types import ModelStatus
from services import Context, services_for

NODE = "ensure_model"
_TICK_S = 1.0  # how often the elapsed time of a load is reported


async def ensure_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Report the model's status and load it when needed; a failure becomes a fallback reason."""
    svc = await services_for(runtime.context)
    model, writer = state["model"], runtime.stream_writer
    try:
        # Ollama's /api/ps (at most a second old) is the truth: it evicts models on its own, and
        # when it is down this raises server_down rather than claiming the model is ready.
        if await svc.ollama.is_loaded(model):
            emit_status(writer, NODE, f"{model} is ready", model=model, model_status="ready")
            return {"model_status": ModelStatus.READY.value}
        keep_alive = svc.config.keep_alive_for(state.get("task"))
        load_s = await _load(svc.ollama, model, writer, svc.config.ollama.allow_pull, keep_alive)
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


async def _load(
    ollama: OllamaClient, model: str, writer: StreamWriter, allow_pull: bool, keep_alive: str | int
) -> float:
    try:
        return await _load_with_ticks(ollama, model, writer, keep_alive)
    except ProviderError as exc:
        if exc.reason != "not_installed" or not allow_pull:
            raise
    emit_status(writer, NODE, f"{model} is not installed: pulling it", model=model, model_status="loading")
    async for progress in ollama.pull_model(model):
        done = ""
        if progress.total:
            done = f" {100 * (progress.completed or 0) / progress.total:.0f}%"
        emit_status(writer, NODE, f"Pulling {model}: {progress.status}{done}", model=model)
    return await _load_with_ticks(ollama, model, writer, keep_alive)


async def _load_with_ticks(
    ollama: OllamaClient, model: str, writer: StreamWriter, keep_alive: str | int
) -> float:
    """Load, reporting the elapsed seconds while the user waits."""
    started = time.monotonic()
    emit_status(
        writer, NODE, f"Loading {model} (first time ~30-60 s)...", model=model, model_status="loading"
    )
    load = asyncio.ensure_future(ollama.load_model(model, keep_alive=keep_alive))
    try:
        while True:
            done, _ = await asyncio.wait({load}, timeout=_TICK_S)
            if done:
                return load.result()
            elapsed = time.monotonic() - started
            emit_status(
                writer,
                NODE,
                f"Loading {model}... {elapsed:.0f} s",
                model=model,
                model_status="loading",
                elapsed_s=elapsed,
            )
    finally:
        load.cancel()
