"""The memory budget: which models may be resident together, and who unloads what to make room.

Ollama's own scheduler evicts by shortest keep-alive once its memory is full; this one keeps the
models under `ollama.vram_budget_gb` and evicts by use: the least recently used idle model goes
first. A model with a request in flight (a load or a generation of this process) is never
unloaded: the swap waits for it, up to `ollama.budget_wait`, and then fails with the reason.

No thrash: one swap at a time. A request for a model that is resident and not about to be
evicted joins it at once; every other request queues for the swap lock, so the requests for one
model that queue behind a swap find it loaded and run together, and a swap that waits for a busy
model holds back new requests for that model (they queue behind it) rather than starving.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from providers.errors import ProviderError
from providers.ollama_types import InstalledModel, LoadedModel

_UNLOAD_GRACE_S = 10.0  # how long an unloaded model may still be listed by /api/ps
GB = 1_000_000_000  # Ollama's `size` is bytes; its CLI shows decimal GB

Notify = Callable[[str], None]
"""Receives a line for the status stream ("Unloading codellama ... to make room for ...")."""


class _Host(Protocol):
    """What the budget needs of the Ollama client."""

    def confirmed_loaded(self, model: str) -> bool: ...
    async def list_loaded_models(self) -> list[LoadedModel]: ...
    async def list_available_models(self) -> list[InstalledModel]: ...
    async def unload_model(self, model: str) -> None: ...


def gigabytes(size: int) -> str:
    """A size as Ollama's CLI prints it: "7.9 GB"."""
    return f"{size / GB:.1f} GB"


def display(model: str) -> str:
    """A model's name as a user typed it: Ollama's implicit `:latest` left out."""
    return model.removesuffix(":latest")


def idle_text(seconds: float | None) -> str:
    """How long a model has been idle ("idle 12 min"), or "not used by modelyard" when unknown."""
    if seconds is None:
        return "not used by modelyard"
    if seconds < 90:
        return f"idle {seconds:.0f} s"
    if seconds < 5400:
        return f"idle {seconds / 60:.0f} min"
    return f"idle {seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Eviction:
    """One model unloaded to make room for another."""

    model: str
    size: int
    idle_s: float | None
    for_model: str

    @property
    def message(self) -> str:
        """The status line: "Unloading codellama (7.9 GB, idle 12 min) to make room for mermaid-mistral"."""
        return (
            f"Unloading {display(self.model)} ({gigabytes(self.size)}, {idle_text(self.idle_s)}) "
            f"to make room for {display(self.for_model)}"
        )


class MemoryBudget:
    """Admits requests to models so that the resident ones fit `limit` bytes (None: no budget)."""

    def __init__(
        self,
        host: _Host,
        limit: int | None,
        wait_s: float,
        *,
        last_used: Callable[[str], float | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self.limit = limit
        self._wait_s = wait_s
        self._history = last_used  # wall-clock time a model last served a request (any process)
        self._clock = clock
        self._busy: Counter[str] = Counter()
        self._used_at: dict[str, float] = {}  # this process's own uses: wall-clock end time
        self._sizes: dict[str, int] = {}  # the most recent resident size seen per model
        self._doomed: set[str] = set()  # busy models a waiting swap must evict
        self._unloaded: dict[str, float] = {}  # asked to unload at: Ollama may list it a moment longer
        self._swap = asyncio.Lock()
        self._released = asyncio.Condition()
        self._releases = 0  # counts the ends of loads and generations: a wait never misses one

    def busy(self, model: str) -> int:
        """Loads and generations of `model` in flight in this process."""
        return self._busy[model]

    @contextlib.asynccontextmanager
    async def admit(self, model: str, notify: Notify | None = None) -> AsyncIterator[None]:
        """Hold `model` resident for the body (a load or a generation), making room first."""
        if self.limit is not None and not self._joins(model):
            async with self._swap:
                if not self._busy[model]:  # else a request queued before this one made the room
                    await self._make_room(model, notify)
                self._busy[model] += 1
                self._unloaded.pop(model, None)
        else:
            self._busy[model] += 1
        try:
            yield
        finally:
            self._busy[model] -= 1
            if not self._busy[model]:
                del self._busy[model]
            self._used_at[model] = self._clock()
            self._releases += 1
            async with self._released:
                self._released.notify_all()

    def has_room(self, model: str, size: int, loaded: list[LoadedModel]) -> bool:
        """Whether `model` (`size` bytes on disk) fits beside the models `loaded` without unloading any."""
        if self.limit is None:
            return True
        others = sum(e.size for e in loaded if e.name != model and not self._just_unloaded(e.name))
        return others + self._sizes.get(model, size) <= self.limit

    def note_sizes(self, loaded: list[LoadedModel]) -> None:
        """Remember resident sizes (with their KV cache, larger than the file) from an /api/ps listing."""
        for entry in loaded:
            if entry.size:
                self._sizes[entry.name] = entry.size

    def _joins(self, model: str) -> bool:
        """Resident, or being used, and not about to be evicted: no swap needed."""
        if model in self._doomed:
            return False
        return self._busy[model] > 0 or self._host.confirmed_loaded(model)

    async def _make_room(self, model: str, notify: Notify | None) -> None:
        assert self.limit is not None
        deadline = asyncio.get_running_loop().time() + self._wait_s
        announced = False
        try:
            while True:
                releases = self._releases
                loaded = await self._host.list_loaded_models()
                self.note_sizes(loaded)
                if any(entry.name == model for entry in loaded) and not self._just_unloaded(model):
                    return
                need = await self._size_of(model)
                if need > self.limit:
                    raise ProviderError(
                        "load_failed",
                        f"{display(model)} needs {gigabytes(need)}, more than the memory budget of "
                        f"{gigabytes(self.limit)} (ollama.vram_budget_gb)",
                    )
                resident = await self._resident(loaded, model)
                over = sum(resident.values()) + need - self.limit
                if over <= 0:
                    return
                victims = self._victims(resident, over)
                if victims is not None:
                    for name in victims:
                        eviction = Eviction(name, resident[name], self._idle_s(name), model)
                        if notify is not None:
                            notify(eviction.message)
                        await self._host.unload_model(name)
                        self._unloaded[name] = self._clock()
                    return
                # Only busy models can make room: wait for one to finish, never unload it mid-request.
                busy = sorted(name for name in resident if self._busy[name])
                waiting_for = ", ".join(map(display, busy))
                self._doomed.update(busy)
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise ProviderError(
                        "load_failed",
                        f"the memory budget of {gigabytes(self.limit)} (ollama.vram_budget_gb) cannot "
                        f"make room for {display(model)} ({gigabytes(need)}): {waiting_for} still busy after "
                        f"{self._wait_s:g} s (ollama.budget_wait)",
                    )
                if notify is not None and not announced:
                    announced = True
                    notify(
                        f"Waiting for {waiting_for} to finish before loading {display(model)} (memory budget)"
                    )
                await self._next_release(releases, remaining)
        finally:
            self._doomed.clear()

    async def _next_release(self, seen: int, timeout: float) -> None:
        """Wait until a load or generation ends after the `seen`-th one (or `timeout` passes)."""
        async with self._released:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait_for(lambda: self._releases != seen), timeout)

    async def _resident(self, loaded: list[LoadedModel], model: str) -> dict[str, int]:
        """What holds memory besides `model`: Ollama's listing plus our admitted loads not listed yet.

        A model we just unloaded is left out: Ollama frees it once idle, and may list it until then.
        """
        resident = {
            entry.name: entry.size
            for entry in loaded
            if entry.name != model and not self._just_unloaded(entry.name)
        }
        for name in list(self._busy):
            if name != model and name not in resident:
                resident[name] = await self._size_of(name)
        return resident

    def _just_unloaded(self, name: str) -> bool:
        asked = self._unloaded.get(name)
        return asked is not None and self._clock() - asked < _UNLOAD_GRACE_S

    def _victims(self, resident: Mapping[str, int], over: int) -> list[str] | None:
        """The idle models to unload, least recently used first, or None when they are not enough."""
        idle = [name for name in resident if not self._busy[name]]
        # Never used by anyone we know of sorts first; then the longest idle.
        idle.sort(key=lambda name: (self._last_use(name) or 0.0, name))
        chosen: list[str] = []
        freed = 0
        for name in idle:
            if freed >= over:
                break
            chosen.append(name)
            freed += resident[name]
        return chosen if freed >= over else None

    def _last_use(self, name: str) -> float | None:
        own = self._used_at.get(name)
        if own is not None:
            return own
        return self._history(name) if self._history is not None else None

    def _idle_s(self, name: str) -> float | None:
        last = self._last_use(name)
        return None if last is None else max(0.0, self._clock() - last)

    async def _size_of(self, model: str) -> int:
        """Resident size last seen, else the file size from /api/tags (a lower bound)."""
        if model in self._sizes:
            return self._sizes[model]
        for entry in await self._host.list_available_models():
            if entry.name == model:
                return entry.size
        return 0  # not installed: the load itself will say so
