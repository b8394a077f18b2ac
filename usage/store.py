"""SQLite-backed usage statistics: one row per request, dashboard by model."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database

from config.redaction import MIN_SECRET_CHARS, redact
from config.schema import QualityConfig
from usage import history
from usage import quality as _quality
from usage.errors import UsageStoreError
from usage.migrations import MIGRATIONS, REQUESTS_TABLE, Migration, apply_migrations
from usage.row import UsageRow

DB_FILENAME = "usage.db"

# Each request counts twice: for the local model tried, by its own outcome, and for the cloud
# model that produced the delivered answer, if one did. A local model's "fallbacks" are its
# requests that went to a cloud model (cloud_attempts > 0, whether or not the cloud answered).
_LOCAL = f"""
SELECT
    COALESCE(NULLIF(local_model, ''), NULLIF(model, ''), '(unknown)') AS model,
    'ollama' AS provider,
    'local' AS location,
    COUNT(*) AS total,
    SUM(COALESCE(local_outcome IN ('valid', 'repaired'), 0)) AS successes,
    SUM(COALESCE(local_outcome = 'repaired', 0)) AS repaired,
    SUM(COALESCE(local_outcome = 'invalid', 0)) AS invalid,
    SUM(COALESCE(local_outcome = 'unchecked', 0)) AS unchecked,
    SUM(status != 'interrupted' AND COALESCE(local_outcome, 'failed') = 'failed') AS failures,
    SUM(status = 'interrupted') AS interrupted,
    SUM(COALESCE(cloud_attempts, 0) > 0) AS fallbacks,
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
    SUM(status = 'success') AS successes,
    0 AS repaired,
    SUM(status = 'invalid') AS invalid,
    SUM(status = 'unchecked') AS unchecked,
    SUM(status = 'failed') AS failures,
    SUM(status = 'interrupted') AS interrupted,
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
FROM ({_LOCAL} UNION ALL {_CLOUD})
ORDER BY total DESC, location DESC, model
"""

# Columns written when a request finishes; the row's created_at stays the request's start.
_FINISH_COLUMNS = tuple(f.name for f in fields(UsageRow) if f.name != "created_at")
_SCRUBBED = ("error_message", "validation_error")


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


def _connect(path: Path) -> sqlite3.Connection:
    # One long-lived connection shared by the event loop thread and the
    # to_thread workers; self._lock serialises every use of it.
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        # busy_timeout first: switching to WAL needs a lock another process
        # may briefly hold.
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


class UsageStore:
    """Per-request usage rows in ``usage.db``; thread-safe, one connection.

    All access, reads included, holds one lock: sqlite-utils wraps statements
    in savepoints, which would interleave badly on a shared connection.
    """

    def __init__(
        self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS, secrets: Iterable[str] = ()
    ) -> None:
        self.path = path
        # Every free-text column is scrubbed here, in one place: a crash message or a validator's
        # error may quote a key (an SDK echoing it, a traceback line), and rows outlive logs.
        self._secrets = tuple(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = _connect(path)
        except sqlite3.DatabaseError as exc:
            raise _open_error(path, exc) from exc
        try:
            self._db = Database(conn, execute_plugins=False)
            apply_migrations(self._db, migrations)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _open_error(path, exc) from exc
            if isinstance(exc, UsageStoreError):
                raise UsageStoreError(f"{path}: {exc}") from exc
            raise
        self._closed = False

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, secrets: Iterable[str] = ()) -> UsageStore:
        """Open ``data_dir / "usage.db"``, creating it if needed."""
        return cls(data_dir / DB_FILENAME, secrets=secrets)

    async def record(self, row: UsageRow) -> int:
        """Insert ``row`` off the event loop; return its id."""
        return await asyncio.to_thread(self.record_sync, row)

    def record_sync(self, row: UsageRow) -> int:
        """Insert ``row``; return its id. Raises UsageStoreError on database errors."""
        values = self._values(row)
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        # Plain SQL on the one connection, committed at once: a SIGKILL right after must find the
        # row on disk. (sqlite-utils' insert costs ~3x more for one row: it inspects the table.)
        sql = f"INSERT INTO {REQUESTS_TABLE} ({columns}) VALUES ({marks})"
        with self._lock:
            self._ensure_open()
            try:
                with self._db.conn:
                    cursor = self._db.conn.execute(sql, tuple(values.values()))
            except sqlite3.Error as exc:
                raise UsageStoreError(f"{self.path}: could not record usage ({exc})") from exc
            if cursor.lastrowid is None:
                raise UsageStoreError(f"{self.path}: insert returned no row id")
            return int(cursor.lastrowid)

    async def finish(self, row_id: int | None, row: UsageRow) -> int:
        """Complete the row ``start`` inserted (off the event loop); return its id.

        Without an id (the start could not be recorded), or when the row is gone, insert ``row``:
        a request always ends with exactly one row.
        """
        return await asyncio.to_thread(self.finish_sync, row_id, row)

    def finish_sync(self, row_id: int | None, row: UsageRow) -> int:
        """``finish`` for synchronous callers. Raises UsageStoreError on database errors."""
        if row_id is None:
            return self.record_sync(row)
        values = self._values(row)
        assignments = ", ".join(f"{name} = ?" for name in _FINISH_COLUMNS)
        sql = f"UPDATE {REQUESTS_TABLE} SET {assignments} WHERE id = ?"
        with self._lock:
            self._ensure_open()
            try:
                with self._db.conn:
                    cursor = self._db.conn.execute(sql, (*(values[c] for c in _FINISH_COLUMNS), row_id))
            except sqlite3.Error as exc:
                raise UsageStoreError(f"{self.path}: could not record usage ({exc})") from exc
        return row_id if cursor.rowcount == 1 else self.record_sync(row)

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
            return list(self._db.query(sql, params))

    def _ensure_open(self) -> None:
        if self._closed:
            raise UsageStoreError(f"{self.path}: usage store is closed")

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


def _open_error(path: Path, exc: sqlite3.Error) -> UsageStoreError:
    """Explain an sqlite error raised while opening or migrating ``path``."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return UsageStoreError(f"{path}: usage database is locked by another process ({exc})")
    if code.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")):
        return UsageStoreError(
            f"{path}: cannot open usage database ({exc}); check permissions or set MODELYARD_DATA_DIR"
        )
    return UsageStoreError(f"{path}: not a usage database ({exc}); move it away or set MODELYARD_DATA_DIR")
