"""Warm-up: load models before their first request, most used first, within the memory budget.

`ollama.warmup` lists task types or models for app start; `modelyard warm` does the same by hand.
A warm-up never unloads anything: a model that would not fit the budget beside what is resident
is skipped, and said so. It is also the probe that ends a cool-down early: a model that loads is
healthy again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from config.schema import AppConfig
from lifecycle.health import HealthBook
from lifecycle.loading import Report, load_with_progress
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from providers.ollama_budget import display, gigabytes
from providers.ollama_http import canonical
from usage.history import LoadTimes

Outcome = Literal["loaded", "ready", "skipped", "failed"]


@dataclass(frozen=True)
class Target:
    """A model to warm, and the task type whose keep_alive it gets (None: a model named directly)."""

    model: str
    task: str | None


@dataclass(frozen=True)
class WarmResult:
    """What warming one model came to."""

    model: str
    outcome: Outcome
    detail: str
    load_s: float | None = None

    @property
    def ok(self) -> bool:
        """Loaded now or already; a skip for the budget is not a failure either."""
        return self.outcome != "failed"


def targets(config: AppConfig, names: Sequence[str]) -> list[Target]:
    """Task types become their models; anything else is a model name. Each model once."""
    found: dict[str, Target] = {}
    for name in names:
        route = config.routing.tasks.get(name)
        model = canonical(route.model if route is not None else name)
        found.setdefault(model, Target(model, name if route is not None else None))
    return list(found.values())


def by_use(found: Sequence[Target], requests: Mapping[str, int]) -> list[Target]:
    """Most requested first (the usage table's count per local model); ties keep the given order."""
    counts = {canonical(model): count for model, count in requests.items()}
    return sorted(found, key=lambda t: -counts.get(t.model, 0))


async def warm(
    config: AppConfig,
    ollama: OllamaClient,
    health: HealthBook,
    load_times: Callable[[str], LoadTimes],
    found: Sequence[Target],
    report: Callable[[str, str], None],
    *,
    health_key: Callable[[str], str] = lambda name: name,
) -> list[WarmResult]:
    """Load each target in order; `report(model, line)` hears every step. Never raises ProviderError.

    `health_key(model)` names the model's cool-down (per host in a pool).
    """
    results: list[WarmResult] = []
    for target in found:
        key = health_key(target.model)
        results.append(await _warm_one(config, ollama, health, load_times, target, report, key))
    return results


async def _warm_one(
    config: AppConfig,
    ollama: OllamaClient,
    health: HealthBook,
    load_times: Callable[[str], LoadTimes],
    target: Target,
    report: Callable[[str, str], None],
    key: str,
) -> WarmResult:
    name = target.model
    keep_alive = config.keep_alive_for(target.task)
    try:
        loaded = await ollama.list_loaded_models()
        if any(m.name == name for m in loaded):
            await ollama.load_model(name, keep_alive=keep_alive)  # refreshes its keep-alive
            await asyncio.to_thread(health.record_success, key)
            return WarmResult(name, "ready", f"{display(name)} was already loaded")
        limit = ollama.budget.limit
        if limit is not None:
            need = next((m.size for m in await ollama.list_available_models() if m.name == name), 0)
            resident = sum(m.size for m in loaded)
            if resident + need > limit:
                return WarmResult(
                    name,
                    "skipped",
                    f"{display(name)} ({gigabytes(need)}) does not fit beside the {gigabytes(resident)} "
                    f"resident within the budget of {gigabytes(limit)}: a warm-up never unloads",
                )
        times = await asyncio.to_thread(load_times, name)
        load_s = await load_with_progress(
            ollama,
            health,
            times,
            name,
            keep_alive=keep_alive,
            allow_pull=config.ollama.allow_pull,
            report=_lines(name, report),
            health_key=key,
        )
    except ProviderError as exc:
        return WarmResult(name, "failed", f"{display(name)}: {exc.reason}: {exc.message}")
    return WarmResult(name, "loaded", f"{display(name)} ready (loaded in {load_s:.1f} s)", load_s)


def _lines(model: str, report: Callable[[str, str], None]) -> Report:
    return lambda event: report(model, event.message)
