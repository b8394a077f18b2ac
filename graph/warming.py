"""Warm-up with a process's services: what `modelyard warm` and the chat app's start-up run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from lifecycle.warmup import WarmResult, by_use, targets, warm
from services import Services


async def warm_models(
    services: Services, names: Sequence[str], report: Callable[[str, str], None]
) -> list[WarmResult]:
    """Warm `names` (task types or models; empty: `ollama.warmup`), most used first."""
    config = services.config
    found = targets(config, names or config.ollama.warmup)
    counts = await asyncio.to_thread(services.usage.request_counts)
    return await warm(
        config, services.ollama, services.health, services.usage.load_times, by_use(found, counts), report
    )
