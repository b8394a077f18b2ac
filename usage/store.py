"""Usage statistics: one row per request, dashboard by model; SQLite, or PostgreSQL for teams."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from config.redaction import MIN_SECRET_CHARS, redact
from config.schema import QualityConfig
from usage import history
from usage import quality as _quality
from usage.backend import Backend
from usage.errors import UsageStoreError
from usage.migrations import MIGRATIONS, REQUESTS_TABLE, Migration
from usage.row import UsageRow
from usage.sqlite_backend import SqliteBackend

DB_FILENAME = "usage.db"

# Written once for both engines: counts are SUM(CASE WHEN ...) (PostgreSQL has no SUM(boolean)).
# Each request counts twice: for the local model tried, by its own outcome, and for the cloud
# model that produced the delivered answer, if one did. A local model's "fallbacks" are its
# requests that went to a cloud model (cloud_attempts > 0, whether or not the cloud answered).
_LOCAL = f"""
SELECT
    COALESCE(NULLIF(local_model, ''), NULLIF(model, ''), '(unknown)') AS model,
    'ollama' AS provider,
    'local' AS location,
    COUNT(*) AS total,
    SUM(CASE WHEN local_outcome IN ('valid', 'repaired') THEN 1 ELSE 0 END) AS successes,
    SUM(CASE WHEN local_outcome = 'repaired' THEN 1 ELSE 0 END) AS repaired,
    SUM(CASE WHEN local_outcome = 'invalid' THEN 1 ELSE 0 END) AS invalid,
    SUM(CASE WHEN local_outcome = 'unchecked' THEN 1 ELSE 0 END) AS unchecked,
    SUM(CASE WHEN status != 'interrupted' AND COALESCE(local_outcome, 'failed') = 'failed' THEN 1 ELSE 0 END)
        AS failures,
    SUM(CASE WHEN status = 'interrupted' THEN 1 ELSE 0 END) AS interrupted,
    SUM(CASE WHEN COALESCE(cloud_attempts, 0) > 0 THEN 1 ELSE 0 END) AS fallbacks,
    AVG(generation_time_s) AS avg_time_s,
    COALESCE(SUM(input_tokens - COALESCE(cloud_input_tokens, 0)), 0) AS input_tokens,
    COALESCE(SUM(output_tokens - COALESCE(cloud_output_tokens, 0)), 0) AS output_tokens,
    MAX(created_at) AS last_used
FROM {REQUESTS_TABLE}
GROUP BY 1
"""

# A cloud model only ever answers a request that fell back: its fallback rate is 1 by construction.
_CLOUD = f"""
SELECT
    cloud_model AS model,
    CASE WHEN COUNT(DISTINCT cloud_provider) = 1 THEN MAX(cloud_provider) ELSE 'mixed' END AS provider,
    'cloud' AS location,
    COUNT(*) AS total,
    SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes,
    0 AS repaired,
    SUM(CASE WHEN status = 'invalid' THEN 1 ELSE 0 END) AS invalid,
    SUM(CASE WHEN status = 'unchecked' THEN 1 ELSE 0 END) AS unchecked,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failures,
    SUM(CASE WHEN status = 'interrupted' THEN 1 ELSE 0 END) AS interrupted,
    COUNT(*) AS fallbacks,
    AVG(generation_time_s) AS avg_time_s,
    COALESCE(SUM(cloud_input_tokens), 0) AS input_tokens,
    COALESCE(SUM(cloud_output_tokens), 0) AS output_tokens,
    MAX(created_at) AS last_used
FROM {REQUESTS_TABLE}
WHERE cloud_model IS NOT NULL
GROUP BY cloud_model
"""

_DASHBOARD_SQL = f"""
SELECT *, 1.0 * successes / total AS success_rate, 1.0 * fallbacks / total AS fallback_rate
FROM ({_LOCAL} UNION ALL {_CLOUD}) AS per_model
ORDER BY total DESC, location DESC, model
"""

# Columns written when a request finishes; the row's created_at stays the request's start.
_FINISH_COLUMNS = tuple(f.name for f in fields(UsageRow) if f.name != "created_at")
_SCRUBBED = ("error_message", "validation_error")


T = TypeVar("T")


@dataclass(frozen=True)
class ModelStats:
    """Dashboard line for one model, local or cloud (a model used both ways gets two lines).

    A local model counts every request that tried it, by its own outcome:
    ``successes`` (valid at once, or after a repair: ``repaired`` of them),
    ``invalid``, ``unchecked``, ``failures`` and ``interrupted`` (the process died)
    add up to ``total``; ``fallbacks`` are its requests that went to a cloud model.
    A cloud model counts the requests it answered, by the request's status; each of
    them was a fallback. Tokens are the model's own share of each request.
    ``provider`` is "mixed" if a cloud model's rows disagree. Rates are fractions in
    [0, 1]; ``avg_time_s`` averages the requests' non-null wall times (None if none).
    """

    model: str
    provider: str
    location: str
    total: int
    successes: int
    invalid: int
    failures: int
    fallbacks: int
    success_rate: float
    fallback_rate: float
    avg_time_s: float | None
    input_tokens: int
    output_tokens: int
    last_used: str
    repaired: int = 0
    unchecked: int = 0
    interrupted: int = 0

    def to_dict(self) -> dict[str, object]:
        """Return the stats as a JSON-serialisable dict."""
        return asdict(self)


class UsageStore:
    """Per-request usage rows in ``usage.db`` (or on PostgreSQL); thread-safe, one connection.

    All access, reads included, holds one lock: sqlite-utils wraps statements
    in savepoints, which would interleave badly on a shared connection (and a
    psycopg connection runs one statement at a time anyway).
    """

    def __init__(
        self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS, secrets: Iterable[str] = ()
    ) -> None:
        self._setup(SqliteBackend(path, migrations), secrets)
        self.path: Path | None = path

    @classmethod
    def on(cls, backend: Backend, *, secrets: Iterable[str] = ()) -> UsageStore:
        """A store on an opened (and migrated) backend: PostgreSQL's, see ``usage.factory``."""
        store = cls.__new__(cls)
        store._setup(backend, secrets)
        store.path = None
        return store

    def _setup(self, backend: Backend, secrets: Iterable[str]) -> None:
        # Every free-text column is scrubbed here, in one place: a crash message or a validator's
        # error may quote a key (an SDK echoing it, a traceback line), and rows outlive logs.
        self._secrets = tuple(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
        self._lock = threading.RLock()  # soon() holds it around the *_sync calls that take it
        self._db = backend
        self.where = backend.where
        self._closed = False

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, secrets: Iterable[str] = ()) -> UsageStore:
        """Open ``data_dir / "usage.db"``, creating it if needed."""
        return cls(data_dir / DB_FILENAME, secrets=secrets)

    async def record(self, row: UsageRow) -> int:
        """Insert ``row``; return its id (on the loop when it cannot wait, see ``soon``)."""
        return await self.soon(self.record_sync, row)

    def record_sync(self, row: UsageRow) -> int:
        """Insert ``row``; return its id. Raises UsageStoreError on database errors."""
        values = self._values(row)
        with self._lock:
            self._ensure_open()
            return self._db.insert(REQUESTS_TABLE, values)

    async def finish(self, row_id: int | None, row: UsageRow) -> int:
        """Complete the row ``start`` inserted (off the event loop); return its id.

        Without an id (the start could not be recorded), or when the row is gone, insert ``row``:
        a request always ends with exactly one row.
        """
        return await self.soon(self.finish_sync, row_id, row)

    async def soon(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` (this store's writes, index reads) on the loop if it cannot wait, else in a thread.

        A local SQLite write takes tens of microseconds, less than the thread hop (~0.3 ms, two
        per request). It runs on the loop only if nothing can make it wait there: the store's
        lock is free (a dashboard query may hold it) and, with the busy timeout at 0, no other
        process holds the file. Otherwise it goes to a thread, where waiting is harmless.

        Any failure on the loop sends it to the thread too, where a real error is raised again:
        each write is one statement (or an update, then an insert only if it changed nothing), so
        one that failed changed nothing; ``work`` must keep to that. Besides a lock held elsewhere,
        that covers servers that forbid blocking calls on their loop (`langgraph dev` raises
        BlockingError for any).
        """
        self._ensure_open()
        # Only a local file: a PostgreSQL statement is a network round trip, always in a thread.
        if isinstance(self._db, SqliteBackend) and self._lock.acquire(blocking=False):
            try:
                with self._db.no_wait():
                    return work(*args)
            except Exception:  # noqa: BLE001 - run again below, where a real error is raised
                pass
            finally:
                self._lock.release()
        return await asyncio.to_thread(work, *args)

    def finish_sync(self, row_id: int | None, row: UsageRow) -> int:
        """``finish`` for synchronous callers. Raises UsageStoreError on database errors."""
        if row_id is None:
            return self.record_sync(row)
        values = self._values(row)
        assignments = ", ".join(f"{name} = ?" for name in _FINISH_COLUMNS)
        sql = f"UPDATE {REQUESTS_TABLE} SET {assignments} WHERE id = ?"
        with self._lock:
            self._ensure_open()
            changed = self._db.update(sql, (*(values[c] for c in _FINISH_COLUMNS), row_id))
        return row_id if changed == 1 else self.record_sync(row)

    def _values(self, row: UsageRow) -> dict[str, object]:
        values = row.to_dict()
        for name in _SCRUBBED:
            text = values[name]
            if isinstance(text, str) and self._secrets:
                values[name] = redact(text, self._secrets)
        return values

    def dashboard(self) -> list[ModelStats]:
        """Return per-model statistics, busiest model first."""
        return [ModelStats(**row) for row in self._query(_DASHBOARD_SQL)]

    def last_used(self, model: str) -> float | None:
        """When a request last used local `model` (epoch seconds), in any process."""
        rows = self._query(history.LAST_USED_SQL, history.spellings(model))
        return history.last_used_epoch(rows[0]["last"]) if rows else None

    def load_times(self, model: str) -> history.LoadTimes:
        """The median of `model`'s latest measured load times on this machine."""
        rows = self._query(history.LOAD_TIMES_SQL, history.spellings(model))
        return history.load_times([row["load_time_s"] for row in rows])

    def quality(self, window: int = _quality.DEFAULT_WINDOW) -> list[_quality.QualityStats]:
        """Pass, repair and fallback rates per (local model, task type), busiest pair first.

        Over all rows and over the last ``window`` judged ones; definitions in ``usage.quality``.
        """
        return _quality.quality(self._query, window)

    def low_quality(
        self, model: str, task_type: str, config: QualityConfig
    ) -> _quality.QualityWarning | None:
        """A warning if the pair passes validation too rarely lately, else None.

        That is: its pass rate over its last ``config.window`` judged requests is under
        ``config.min_pass_rate``, with at least ``config.min_requests`` of them. Cheap enough for
        every request: one index walk, newest first (see ``usage.quality.PAIR_WINDOW_SQL``).
        """
        return _quality.low_quality(self._query, model, task_type, config)

    def request_counts(self) -> dict[str, int]:
        """How many requests each local model was tried for (as the rows spell it)."""
        return {str(r["model"]): int(r["requests"]) for r in self._query(history.REQUEST_COUNTS_SQL)}

    async def load_times_async(self, model: str) -> history.LoadTimes:
        """`load_times` off the event loop."""
        return await asyncio.to_thread(self.load_times, model)

    def recent(self, limit: int = 20) -> list[dict[str, object]]:
        """Return the latest ``limit`` rows (all columns), newest first."""
        return self._query(f"SELECT * FROM {REQUESTS_TABLE} ORDER BY id DESC LIMIT ?", (limit,))

    def count(self) -> int:
        """Return the number of recorded requests."""
        rows = self._query(f"SELECT COUNT(*) AS n FROM {REQUESTS_TABLE}")
        return int(rows[0]["n"])

    def _query(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> list[dict[str, Any]]:
        with self._lock:
            self._ensure_open()
            return self._db.query(sql, params)

    def _ensure_open(self) -> None:
        if self._closed:
            raise UsageStoreError(f"{self.where}: usage store is closed")

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
