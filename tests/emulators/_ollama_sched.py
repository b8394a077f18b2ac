"""Which models are loaded, when they expire, and how often they were loaded.

Mirrors the parts of Ollama's server/sched.go that clients can observe:

* concurrent requests for a model that is not loaded share one load (pending
  requests wait for the runner instead of starting their own);
* a runner's expiry clock starts when its last request finishes, using that
  request's keep_alive (a loaded model never expires mid-request);
* keep_alive 0 unloads once idle; negative keeps it forever;
* a request whose num_ctx (options.num_ctx, else the model's default) differs
  from the loaded runner's reloads the model once the runner is idle
  (needsReload compares the runner options): the load counts and takes
  load_delay again;
* loads happen one at a time (processPending handles one pending request until
  it runs), evictions included; a request for a model already loaded skips the
  queue;
* with a ``memory_limit`` (the resident runners' ``size`` sum) or ``max_loaded``
  (OLLAMA_MAX_LOADED_MODELS), a load that does not fit unloads runners first, as
  findRunnerToUnload picks them: idle ones before busy ones, each group by
  keep_alive ascending (forever last), then name. With none idle it waits for
  the first to finish its requests, then unloads it. A model larger than the
  whole limit fails with Ollama's "requires more system memory" error.

Expiry is checked lazily on every access, which is all a client can observe.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ._ollama_models import ModelEntry, details, digest, expiry_timestamp, no_system_memory

_SHUTTING_DOWN = "server shutting down"


@dataclass
class _Runner:
    key: str
    entry: ModelEntry
    keep_alive: float
    expires_at: float  # monotonic seconds; inf = forever
    context_length: int
    size: int  # as loaded: a later spec change does not resize a running model
    size_vram: int
    active: int = 0

    def unload_order(self) -> tuple[float, str]:
        # ByDurationAndName: Go's uint64 cast puts a negative (forever) keep_alive last, as inf does.
        return self.keep_alive, self.entry.name


def check_memory_limit(limit: object) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"memory_limit: expected bytes >= 0 or null, got {limit!r}")
    return limit


def check_max_loaded(count: object) -> int | None:
    # Ollama reads 0 as "pick a default"; here null is the only way to say unlimited.
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"max_loaded: expected a count >= 1 or null, got {count!r}")
    return count


@dataclass(frozen=True)
class LoadResult:
    load_seconds: float = 0.0
    error: str | None = None


class Scheduler:
    """Thread-safe loaded-model table; time comes from ``clock`` (monotonic).

    ``memory_limit`` (bytes) and ``max_loaded`` bound what stays resident; None
    means unlimited. They are checked when a model loads, as Ollama checks free
    memory then: lowering them unloads nothing by itself.
    """

    def __init__(
        self,
        sleep: Callable[[float], bool],
        clock: Callable[[], float] = time.monotonic,
        memory_limit: int | None = None,
        max_loaded: int | None = None,
    ) -> None:
        self._sleep = sleep  # returns False when the emulator is stopping
        self._clock = clock
        self._lock = threading.Lock()
        self._runners: dict[str, _Runner] = {}
        self._load_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._loading = threading.Lock()  # one load (with its evictions) at a time, across models
        self._load_counts: defaultdict[str, int] = defaultdict(int)
        self._evictions: defaultdict[str, int] = defaultdict(int)
        self._names: dict[str, str] = {}
        self._memory_limit: int | None = None
        self._max_loaded: int | None = None
        self.set_memory_limit(memory_limit)
        self.set_max_loaded(max_loaded)

    @property
    def memory_limit(self) -> int | None:
        with self._lock:
            return self._memory_limit

    @property
    def max_loaded(self) -> int | None:
        with self._lock:
            return self._max_loaded

    def set_memory_limit(self, limit: int | None) -> None:
        limit = check_memory_limit(limit)
        with self._lock:
            self._memory_limit = limit

    def set_max_loaded(self, count: int | None) -> None:
        count = check_max_loaded(count)
        with self._lock:
            self._max_loaded = count

    def acquire(self, key: str, entry: ModelEntry, keep_alive: float, num_ctx: int | None) -> LoadResult:
        """Make sure the model is loaded and mark one more request as using it."""
        started = self._clock()
        context_length = num_ctx or entry.spec.context_length
        with self._lock:
            load_lock = self._load_locks[key]
        # One load per model at a time; requests queued behind it find it loaded.
        with load_lock:
            with self._lock:
                runner = self._runners.get(key)
                if runner is not None and runner.context_length == context_length:
                    self._use(runner, keep_alive)  # getRunner's shortcut: no queue, no load
                    return LoadResult(self._clock() - started)
            with self._loading:
                error = self._make_room(key, entry)
                if error is not None:
                    return LoadResult(self._clock() - started, error)
                if not self._sleep(entry.spec.load_delay):
                    return LoadResult(error=_SHUTTING_DOWN)
                if entry.spec.load_error is not None:
                    return LoadResult(self._clock() - started, entry.spec.load_error)
                size = entry.spec.size
                size_vram = size if entry.spec.size_vram is None else entry.spec.size_vram
                runner = _Runner(key, entry, keep_alive, math.inf, context_length, size, size_vram)
                with self._lock:
                    self._runners[key] = runner
                    self._names[key] = entry.name
                    self._load_counts[key] += 1
                    self._use(runner, keep_alive)
        return LoadResult(self._clock() - started)

    def _make_room(self, key: str, entry: ModelEntry) -> str | None:
        """Unload runners until ``entry`` fits; the error text if it never can (or we stop)."""
        size = entry.spec.size
        victim: _Runner | None = None  # once chosen, waited for, as processPending waits for its unload
        while True:
            with self._lock:
                self._reap()
                own = self._runners.get(key)
                if own is not None:
                    victim = own  # needsReload: other options, so unload and load anew
                elif victim is None or self._runners.get(victim.key) is not victim:
                    if self._memory_limit is not None and size > self._memory_limit:
                        # Deterministic, so evicting first (as Ollama may) would only lose models.
                        return no_system_memory(size, self._memory_limit)
                    if self._fits(size):
                        return None
                    victim = self._runner_to_unload()
                if victim.active == 0:
                    del self._runners[victim.key]
                    if victim is not own:
                        self._evictions[victim.key] += 1
                    victim = None
                    continue
            if not self._sleep(0.01):  # the victim is busy: wait for it to go idle
                return _SHUTTING_DOWN

    def _fits(self, size: int) -> bool:
        if self._max_loaded is not None and len(self._runners) >= self._max_loaded:
            return False
        used = sum(r.size for r in self._runners.values())
        return self._memory_limit is None or used + size <= self._memory_limit

    def _runner_to_unload(self) -> _Runner:
        """findRunnerToUnload: the first idle runner in unload order, else the first of all."""
        ordered = sorted(self._runners.values(), key=_Runner.unload_order)
        # Not fitting implies something is loaded: max_loaded >= 1 and size <= memory_limit.
        return next((r for r in ordered if r.active == 0), ordered[0])

    def _use(self, runner: _Runner, keep_alive: float) -> None:
        runner.active += 1
        runner.keep_alive = keep_alive  # the latest request's keep_alive wins
        runner.expires_at = self._clock() + keep_alive  # what ps shows while busy

    def release(self, key: str) -> None:
        """A request finished: start the expiry clock if the runner is now idle."""
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                return
            runner.active = max(0, runner.active - 1)
            if runner.active == 0:
                runner.expires_at = self._clock() + runner.keep_alive
            self._reap()

    def expire(self, key: str) -> None:
        """Unload as soon as idle, as keep_alive 0 or an elapsed timer does."""
        with self._lock:
            runner = self._runners.get(key)
            if runner is not None:
                runner.keep_alive = 0.0
                runner.expires_at = self._clock()
            self._reap()

    def _reap(self) -> None:
        now = self._clock()
        for key, runner in list(self._runners.items()):
            if runner.active == 0 and runner.expires_at <= now:
                del self._runners[key]

    def loaded(self) -> list[str]:
        with self._lock:
            self._reap()
            return [r.entry.name for r in self._runners.values()]

    def load_count(self, key: str) -> int:
        with self._lock:
            return self._load_counts.get(key, 0)

    def load_counts(self) -> dict[str, int]:
        with self._lock:
            return {self._names[k]: n for k, n in self._load_counts.items()}

    def eviction_count(self, key: str) -> int:
        """How often the model was unloaded to make room for another (not expiry, not reload)."""
        with self._lock:
            return self._evictions.get(key, 0)

    def evictions(self) -> dict[str, int]:
        with self._lock:
            return {self._names[k]: n for k, n in self._evictions.items()}

    def ps_json(self) -> list[dict[str, object]]:
        """/api/ps entries, longest remaining keep-alive first (as PsHandler sorts)."""
        with self._lock:
            self._reap()
            now = self._clock()
            runners = sorted(self._runners.values(), key=lambda r: r.expires_at, reverse=True)
            return [
                {
                    "name": r.entry.name,
                    "model": r.entry.name,
                    "size": r.size,
                    "digest": digest(r.entry.name),
                    "details": details(r.entry.spec),
                    "expires_at": expiry_timestamp(r.expires_at - now),
                    "size_vram": r.size_vram,  # less than size: partly offloaded to the CPU
                    "context_length": r.context_length,
                }
                for r in runners
            ]

    def reset(self) -> None:
        with self._lock:
            self._runners.clear()
            self._load_counts.clear()
            self._evictions.clear()
            self._names.clear()
