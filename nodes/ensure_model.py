"""ensure_model: make sure the task's local model is loaded, loading (or pulling) it once.

With a pool of Ollama hosts it first picks the host (lifecycle/placement.py): where the model is
warm, else where it fits; the choice and why go into state and the status stream.

A model cooling down after a failed load or a timeout is skipped at once (the cool-down says
for how long and why); one that failed to load is used after all when Ollama shows it resident.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from lifecycle.choice import Candidate, Choice, choose
from lifecycle.loading import LoadEvent, load_with_progress
from lifecycle.placement import place
from nodes.attempts import failed_attempt
from nodes.events import emit_status, writer_for
from nodes.state import State
from providers.errors import REASON_TEXT, ProviderError
from providers.ollama_http import canonical
from providers.ollama_pool import Host
from providers.ollama_types import ModelStatus
from services import Context, Services, services_for

NODE = "ensure_model"


async def ensure_model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Choose the model (when the task has alternates or a latency budget), then make sure it is loaded.

    Every failure becomes a fallback reason in state; nothing is raised.
    """
    svc = await services_for(runtime.context)
    route = svc.config.route(state["task"])
    budget = state.get("latency_budget_s")
    budget = route.latency_budget_s if budget is None else budget
    if not route.alternates and budget is None:
        return await _ensure(svc, state, state["model"], writer_for(runtime))
    try:
        choice = await _choose(svc, state, [route.model, *route.alternates], budget)
    except ProviderError as exc:  # Ollama down or hung: the same answer as for the task's own model
        return _unavailable(state, state["model"], writer_for(runtime), exc)
    emit_status(writer_for(runtime), NODE, f"Route: {choice.reason}", model=choice.model or state["model"])
    chosen: dict[str, Any] = {"route_choice": choice.to_state()}
    if choice.model is None:
        to_cloud = ProviderError("timeout", f"the latency budget chose the cloud: {choice.reason}")
        return {
            **_unavailable(state, state["model"], writer_for(runtime), to_cloud, announce=False),
            **chosen,
        }
    chosen["model"] = choice.model
    return {**await _ensure(svc, state, choice.model, writer_for(runtime)), **chosen}


async def _choose(svc: Services, state: State, models: list[str], budget: float | None) -> Choice:
    """What is warm (Ollama's /api/ps, one round trip), cooling down and measured, then the choice."""

    def local_facts() -> list[tuple[bool, float | None]]:
        return [
            (svc.health.cooling(canonical(m)) is not None, svc.usage.load_times(m).median_s) for m in models
        ]

    facts = await asyncio.to_thread(local_facts)
    candidates = [
        Candidate(m, i > 0, await _warm(svc, m), cooling, load_s)
        for i, (m, (cooling, load_s)) in enumerate(zip(models, facts, strict=True))
    ]
    return choose(candidates, budget, cloud_allowed=bool(state.get("cloud_providers")))


async def _warm(svc: Services, model: str) -> bool:
    """Whether `model` is loaded: on the one host, or on any host of a pool not marked down.

    A host marked down is not asked: a hanging one would cost every request its inspection limit.
    """
    if svc.pool.single:
        return await svc.ollama.is_loaded(model)
    now, hosts = svc.health.now(), []
    for host in svc.pool.hosts:
        record = await svc.health.host_record_now(host.url)
        if record is None or record.left_s(now) <= 0:
            hosts.append(host)
    answers = await asyncio.gather(*(h.client.is_loaded(model) for h in hosts), return_exceptions=True)
    # Every host down or failing: the first failure (none asked: placement names each host's reason).
    if answers and all(isinstance(answer, BaseException) for answer in answers):
        raise next(a for a in answers if isinstance(a, BaseException))
    return any(answer is True for answer in answers)


async def _ensure(svc: Services, state: State, model: str, writer: StreamWriter) -> dict[str, Any]:
    """Choose the host (in a pool), then report `model`'s status there and load it when needed."""
    if svc.pool.single:
        return await _ensure_on(svc, svc.pool.primary, state, model, writer)
    try:
        placement = await place(svc.pool, svc.health, model, allow_pull=svc.config.ollama.allow_pull)
    except ProviderError as exc:
        return _unavailable(state, model, writer, exc)
    skipped = f" (skipped {'; '.join(placement.skipped)})" if placement.skipped else ""
    emit_status(writer, NODE, f"Host: {placement.reason}{skipped}", model=model)
    placed = {"ollama_host": placement.to_state()}
    return {**await _ensure_on(svc, placement.host, state, model, writer), **placed}


async def _ensure_on(
    svc: Services, host: Host, state: State, model: str, writer: StreamWriter
) -> dict[str, Any]:
    """Report `model`'s status on `host` and load it there when needed."""
    ollama, key = host.client, svc.pool.health_key(canonical(model), host)

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
        cooling = await svc.health.cooling_now(key)
        # Ollama's /api/ps (at most a second old) is the truth: it evicts models on its own, and
        # when it is down this raises server_down rather than claiming the model is ready. A model
        # that timed out is skipped even when resident; one that failed to load is fine once it is.
        if (cooling is None or cooling.reason != "timeout") and await ollama.is_loaded(model):
            if cooling is not None:
                await asyncio.to_thread(svc.health.record_success, key)
            emit_status(writer, NODE, f"{model} is ready", model=model, model_status="ready")
            return {"model_status": ModelStatus.READY.value}
        if cooling is not None:
            raise ProviderError(
                "timeout" if cooling.reason == "timeout" else "load_failed",
                f"skipped for {cooling.left_s(svc.health.now()):.0f} s more (cool-down after "
                f"{cooling.failures} failure{'s' if cooling.failures > 1 else ''}: {cooling.message})",
            )
        load_s = await load_with_progress(
            ollama,
            svc.health,
            await svc.usage.load_times_async(model),
            model,
            keep_alive=svc.config.keep_alive_for(state.get("task")),
            allow_pull=svc.config.ollama.allow_pull,
            report=report,
            notify=notify,
            health_key=key,
        )
    except ProviderError as exc:
        return _unavailable(state, model, writer, exc)
    emit_status(writer, NODE, f"{model} ready (loaded in {load_s:.1f} s)", model=model, model_status="ready")
    return {"model_status": ModelStatus.READY.value, "load_s": load_s}


def _unavailable(
    state: State, model: str, writer: StreamWriter, exc: ProviderError, *, announce: bool = True
) -> dict[str, Any]:
    if announce:
        emit_status(
            writer,
            NODE,
            f"Local model unavailable ({exc.reason}: {REASON_TEXT[exc.reason]}): {exc.message}",
            level="warning",
            model=model,
            model_status=ModelStatus.ERROR.value,
        )
    return {
        "model_status": ModelStatus.ERROR.value if announce else ModelStatus.NOT_LOADED.value,
        "fallback_reason": exc.reason,
        "error": exc.message,
        "attempts": [*state.get("attempts", []), failed_attempt("local", "ollama", model, exc)],
    }
