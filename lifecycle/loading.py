"""Loading one local model with progress a user can read, for a request or a warm-up alike.

Ollama reports no load progress, so progress is the elapsed time against this model's own
median measured load time on this machine (the usage table); only without any history does
the seed's "first time ~30-60 s" stand in. A pull reports bytes and percent from /api/pull.
The load is marked in the health book while it runs (other processes show `loading`), and its
outcome starts or ends the model's cool-down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from lifecycle.health import HealthBook
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from providers.ollama_budget import display
from providers.ollama_http import canonical
from providers.ollama_types import PullProgress
from usage.history import LoadTimes

TICK_S = 1.0  # how often the elapsed time of a load is reported
FIRST_TIME = "first time ~30-60 s"  # the seed's estimate, for a model never measured here


@dataclass(frozen=True)
class LoadEvent:
    """One line of a load's progress."""

    message: str
    elapsed_s: float | None = None
    expected_s: float | None = None
    """The model's median measured load time here (None: never measured)."""
    progress: float | None = None
    """0..1: elapsed against expected (a load or a pull), capped below 1 until done."""


Report = Callable[[LoadEvent], None]


def expectation(times: LoadTimes) -> str:
    """What the first line promises: "usually ~12 s here" or the seed's first-time range."""
    if times.median_s is None:
        return FIRST_TIME
    return f"usually ~{times.median_s:.0f} s here"


def tick(model: str, elapsed: float, expected: float | None) -> LoadEvent:
    """The periodic line: "Loading m... 5 s of ~12 s", or past it "... 15 s (usually ~12 s)"."""
    name = display(model)
    if expected is None:
        return LoadEvent(f"Loading {name}... {elapsed:.0f} s", elapsed)
    if elapsed <= expected:
        message = f"Loading {name}... {elapsed:.0f} s of ~{expected:.0f} s"
    else:
        message = f"Loading {name}... {elapsed:.0f} s (usually ~{expected:.0f} s)"
    return LoadEvent(message, elapsed, expected, min(0.99, elapsed / expected) if expected > 0 else None)


def pull_event(model: str, progress: PullProgress) -> LoadEvent:
    """A pull's line, "Pulling m: pulling 8eeb52dfb3bb 1.2 GB of 4.1 GB", its share as progress."""
    if not progress.total:
        return LoadEvent(f"Pulling {display(model)}: {progress.status}")
    done = progress.completed or 0
    share = done / progress.total
    return LoadEvent(
        f"Pulling {display(model)}: {progress.status} {_bytes(done)} of {_bytes(progress.total)}",
        progress=min(share, 1.0),
    )


def _bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


async def load_with_progress(
    ollama: OllamaClient,
    health: HealthBook,
    times: LoadTimes,
    model: str,
    *,
    keep_alive: str | int,
    allow_pull: bool,
    report: Report,
    notify: Callable[[str], None] | None = None,
    health_key: str | None = None,
) -> float:
    """Load `model` (pulling it first when allowed and missing); returns the load's seconds.

    They count from the moment the memory budget admitted the load: its unloads and waits before
    that are said in their own status lines, and are not the model's load time, which the usage
    rows keep and the next load's expectation is the median of.

    A failure to load or a timeout starts the model's cool-down before it is raised; a success
    ends any cool-down. `notify` hears the memory budget's unloads and waits. `health_key` names
    the cool-down when it is not the model's own (a model on one host of a pool).
    """
    name = canonical(model)
    key = health_key or name
    await asyncio.to_thread(health.mark_loading, key)
    try:
        try:
            load_s = await _load(ollama, name, times, keep_alive, report, notify)
        except ProviderError as exc:
            if exc.reason != "not_installed" or not allow_pull:
                raise
            report(LoadEvent(f"{display(name)} is not installed: pulling it"))
            async for progress in ollama.pull_model(name):
                report(pull_event(name, progress))
            load_s = await _load(ollama, name, times, keep_alive, report, notify)
    except ProviderError as exc:
        await asyncio.to_thread(health.record_failure, key, exc.reason, exc.message)
        raise
    finally:
        await asyncio.shield(asyncio.to_thread(health.unmark_loading, key))
    await asyncio.to_thread(health.record_success, key)
    return load_s


async def _load(
    ollama: OllamaClient,
    name: str,
    times: LoadTimes,
    keep_alive: str | int,
    report: Report,
    notify: Callable[[str], None] | None,
) -> float:
    known = times.median_s is not None
    started: float | None = None

    def begin() -> None:
        # Announced once the memory budget has made room: its "Unloading ... to make room" and
        # "Waiting for ..." lines come first, and the load's clock starts here.
        nonlocal started
        started = time.monotonic()
        report(
            LoadEvent(
                f"Loading {display(name)} ({expectation(times)})...",
                0.0,
                times.median_s,
                0.0 if known else None,
            )
        )

    load = asyncio.ensure_future(
        ollama.load_model(name, keep_alive=keep_alive, notify=notify, admitted=begin)
    )
    try:
        while True:
            done, _ = await asyncio.wait({load}, timeout=TICK_S)
            if done:
                waited = load.result()  # since the call, the memory budget's wait included
                return waited if started is None else time.monotonic() - started
            if started is not None:
                report(tick(name, time.monotonic() - started, times.median_s))
    finally:
        load.cancel()
