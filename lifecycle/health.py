"""Cool-downs: a local model that failed to load or timed out is skipped for a while.

The cool-down doubles with each failure in a row (`ollama.cooldown.base_s`, capped at `max_s`),
so users do not wait on a broken model again and again; a success (a load, a reply, or Ollama
showing the model resident) ends it early. The state lives in one JSON file in the data
directory, so the CLI, the app and Studio see the same cool-downs; the file also says which
models a process is loading right now, since `/api/ps` has no loading state.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.redaction import redact
from config.schema import CooldownConfig

FILENAME = "model_health.json"
FRESH_S = 1.0  # a request trusts the file as read this long ago (another process's news waits <= 1 s)
COOLING_REASONS = frozenset({"load_failed", "timeout"})
MODELS, HOSTS = "cooldowns", "hosts"  # the file's sections: models' cool-downs, pool hosts' cool-downs


@dataclass(frozen=True)
class Cooldown:
    """A model skipped until `until` (epoch seconds) after `failures` failures in a row."""

    model: str
    failures: int
    until: float
    reason: str
    message: str

    def left_s(self, now: float) -> float:
        """Seconds of cool-down left (0 when it is over)."""
        return max(0.0, self.until - now)


class HealthBook:
    """Cool-downs and loads in progress, shared by every process using one data directory.

    Each method may read or write a small file: async code calls them through asyncio.to_thread
    (`langgraph dev` rejects blocking I/O on its event loop).
    """

    def __init__(
        self,
        data_dir: Path,
        config: CooldownConfig,
        *,
        secrets: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = data_dir / FILENAME
        self._config = config
        self._secrets = tuple(secrets)
        self._clock = clock
        self._cache: tuple[int, dict[str, Any]] | None = None  # (mtime_ns, parsed) last read or written
        self._read_at: float | None = None  # monotonic time of the last look at the file

    def now(self) -> float:
        """The book's clock (epoch seconds)."""
        return self._clock()

    # -- cool-downs --------------------------------------------------------------------------

    def cooling(self, model: str) -> Cooldown | None:
        """The model's cool-down when one is running now."""
        return self._running(self.cooldowns().get(model))

    async def cooling_now(self, model: str) -> Cooldown | None:
        """`cooling` for the request path: no file I/O when the file was looked at under FRESH_S ago."""
        return self._running(_entry(await self._state_now(), MODELS, model))

    def cooldowns(self) -> dict[str, Cooldown]:
        """Every recorded cool-down, running or over (the failure count outlives it)."""
        return _cooldowns(self._read())

    def record_failure(self, model: str, reason: str, message: str) -> Cooldown | None:
        """Start (or lengthen) the model's cool-down after a failure; other reasons are ignored."""
        if reason not in COOLING_REASONS:
            return None
        return self._fail(MODELS, model, reason, message)

    def record_success(self, model: str) -> None:
        """The model loaded or answered: its cool-down (and failure count) is over."""
        self._clear(MODELS, model)

    # -- hosts of a pool ---------------------------------------------------------------------

    async def host_record_now(self, url: str) -> Cooldown | None:
        """The host's recorded cool-down, running or over (None: no failure since it last answered).

        For the request path: no file I/O when the file was looked at under FRESH_S ago.
        """
        return _entry(await self._state_now(), HOSTS, url)

    def host_cooldowns(self) -> dict[str, Cooldown]:
        """Every host's recorded cool-down, running or over."""
        entries = self._read().get(HOSTS, {})
        return {url: _cooldown(url, entry) for url, entry in entries.items() if isinstance(entry, dict)}

    def record_host_failure(self, url: str, reason: str, message: str) -> Cooldown:
        """The host did not answer its inspection: skip it for a cool-down, doubling while it lasts."""
        return self._fail(HOSTS, url, reason, message)

    def record_host_success(self, url: str) -> None:
        """The host answered: it is up again."""
        self._clear(HOSTS, url)

    # -- entries -----------------------------------------------------------------------------

    def _running(self, found: Cooldown | None) -> Cooldown | None:
        return found if found is not None and found.until > self._clock() else None

    async def _state_now(self) -> dict[str, Any]:
        """The file's state for the request path: no file I/O when it was looked at under FRESH_S ago."""
        read_at = self._read_at
        if read_at is None or time.monotonic() - read_at > FRESH_S:
            return await asyncio.to_thread(self._read)
        return self._cache[1] if self._cache else {}

    def _fail(self, section: str, key: str, reason: str, message: str) -> Cooldown:
        with self._update() as state:
            entries = state.setdefault(section, {})
            failures = int((entries.get(key) or {}).get("failures", 0)) + 1
            seconds = min(self._config.max_s, self._config.base_s * 2 ** (failures - 1))
            entry = {
                "failures": failures,
                "until": self._clock() + seconds,
                "reason": reason,
                "message": redact(message, self._secrets) if self._secrets else message,
            }
            entries[key] = entry
        return _cooldown(key, entry)

    def _clear(self, section: str, key: str) -> None:
        if key not in self._read().get(section, {}):
            return  # the common case: nothing to write
        with self._update() as state:
            state.get(section, {}).pop(key, None)

    # -- loads in progress -------------------------------------------------------------------

    def mark_loading(self, model: str) -> None:
        """Say that this process is loading `model` (until `unmark_loading`)."""
        with self._update() as state:
            state.setdefault("loading", {})[model] = {"pid": os.getpid(), "since": self._clock()}

    def unmark_loading(self, model: str) -> None:
        """End what `mark_loading` said: this process's load of `model` is over."""
        with self._update() as state:
            loads = state.get("loading", {})
            if (loads.get(model) or {}).get("pid") == os.getpid():
                del loads[model]

    def loading_since(self, model: str) -> float | None:
        """When a live process started loading `model` (epoch seconds), if one is loading it."""
        entry = self._read().get("loading", {}).get(model)
        if not isinstance(entry, dict) or not _alive(entry.get("pid")):
            return None  # a process that died mid-load left its mark behind
        since = entry.get("since")
        return float(since) if isinstance(since, int | float) else None

    # -- the file ----------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        self._read_at = time.monotonic()
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._cache = None
            return {}
        if self._cache is not None and self._cache[0] == mtime:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # unreadable or half-written by a crashed writer: start afresh, lose no request
        state = data if isinstance(data, dict) else {}
        self._cache = (mtime, state)
        return state

    @contextlib.contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        """Read, change and atomically replace the file under an exclusive lock (several processes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._cache = None
            state = json.loads(json.dumps(self._read()))  # a private copy to change
            yield state
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
            # What was just written is what this process knows now (cooling_now reads no file).
            self._cache = (self.path.stat().st_mtime_ns, state)
            self._read_at = time.monotonic()


def _cooldowns(state: dict[str, Any]) -> dict[str, Cooldown]:
    entries = state.get(MODELS, {})
    return {name: _cooldown(name, entry) for name, entry in entries.items() if isinstance(entry, dict)}


def _entry(state: dict[str, Any], section: str, key: str) -> Cooldown | None:
    entry = state.get(section, {}).get(key)
    return _cooldown(key, entry) if isinstance(entry, dict) else None


def _cooldown(model: str, entry: dict[str, Any]) -> Cooldown:
    return Cooldown(
        model=model,
        failures=int(entry.get("failures", 1)),
        until=float(entry.get("until", 0.0)),
        reason=str(entry.get("reason", "load_failed")),
        message=str(entry.get("message", "")),
    )


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True
