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
  load_delay again.

Expiry is checked lazily on every access, which is all a client can observe.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ._ollama_models import ModelEntry, details, digest, expiry_timestamp


@dataclass
class _Runner:
    entry: ModelEntry
    keep_alive: float
    expires_at: float  # monotonic seconds; inf = forever
    context_length: int
    active: int = 0


@dataclass(frozen=True)
class LoadResult:
    load_seconds: float = 0.0
    error: str | None = None


class Scheduler:
    """Thread-safe loaded-model table; time comes from ``clock`` (monotonic)."""

    def __init__(self, sleep: Callable[[float], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self._sleep = sleep  # returns False when the emulator is stopping
        self._clock = clock
        self._lock = threading.Lock()
        self._runners: dict[str, _Runner] = {}
        self._load_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._load_counts: defaultdict[str, int] = defaultdict(int)
        self._names: dict[str, str] = {}

    def acquire(self, key: str, entry: ModelEntry, keep_alive: float, num_ctx: int | None) -> LoadResult:
        """Make sure the model is loaded and mark one more request as using it."""
        started = self._clock()
        context_length = num_ctx or entry.spec.context_length
        with self._lock:
            load_lock = self._load_locks[key]
        # One load per model at a time; requests queued behind it find it loaded.
        with load_lock:
            while True:
                with self._lock:
                    self._reap()
                    runner = self._runners.get(key)
                    if runner is not None and runner.context_length == context_length:
                        self._use(runner, keep_alive)
                        return LoadResult(self._clock() - started)
                    if runner is not None and runner.active == 0:
                        del self._runners[key]  # needsReload: other options, so unload and load anew
                    if key not in self._runners:
                        break
                if not self._sleep(0.01):  # the old runner is busy: wait for it to go idle
                    return LoadResult(error="server shutting down")
            if not self._sleep(entry.spec.load_delay):
                return LoadResult(error="server shutting down")
            if entry.spec.load_error is not None:
                return LoadResult(self._clock() - started, entry.spec.load_error)
            runner = _Runner(entry, keep_alive, math.inf, context_length)
            with self._lock:
                self._runners[key] = runner
                self._names[key] = entry.name
                self._load_counts[key] += 1
                self._use(runner, keep_alive)
        return LoadResult(self._clock() - started)

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
                    "size": r.entry.spec.size,
                    "digest": digest(r.entry.name),
                    "details": details(r.entry.spec),
                    "expires_at": expiry_timestamp(r.expires_at - now),
                    "size_vram": r.entry.spec.size,  # everything offloaded to the GPU
                    "context_length": r.context_length,
                }
                for r in runners
            ]

    def reset(self) -> None:
        with self._lock:
            self._runners.clear()
            self._load_counts.clear()
            self._names.clear()
