"""Warm-up with a process's services: what `modelyard warm` and the chat app's start-up run."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence

from lifecycle.placement import place
from lifecycle.warmup import WarmResult, by_use, targets, warm
from providers.errors import ProviderError
from providers.ollama_budget import display
from services import Services


async def warm_models(
    services: Services, names: Sequence[str], report: Callable[[str, str], None]
) -> list[WarmResult]:
    """Warm `names` (task types or models; empty: `ollama.warmup`), most used first."""
    config = services.config
    found = by_use(
        targets(config, names or config.ollama.warmup), await asyncio.to_thread(services.usage.request_counts)
    )
    pool, health, times = services.pool, services.health, services.usage.load_times
    if pool.single:
        return await warm(config, services.ollama, health, times, found, report)
    results: list[WarmResult] = []
    for target in found:  # in a pool, each model where a request for it would go
        try:
            placement = await place(pool, health, target.model, allow_pull=config.ollama.allow_pull)
        except ProviderError as exc:
            results.append(
                WarmResult(target.model, "failed", f"{display(target.model)}: {exc.reason}: {exc.message}")
            )
            continue
        report(target.model, f"Host: {placement.reason}")
        key = functools.partial(pool.health_key, host=placement.host)
        results += await warm(config, placement.host.client, health, times, [target], report, health_key=key)
    return results
