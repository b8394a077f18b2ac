"""SQLite-backed usage statistics: one row per request, dashboard by model."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlite_utils import Database

from usage.errors import UsageStoreError
from usage.migrations import MIGRATIONS, REQUESTS_TABLE, Migration, apply_migrations
from usage.row import UsageRow

DB_FILENAME = "usage.db"

# A "fallback" is a request that left the local path: it was answered in the
# cloud, or a local attempt was abandoned with a recorded reason even though
# nothing was delivered afterwards.
_IS_FALLBACK = "(location = 'cloud' OR fallback_reason IS NOT NULL)"

_DASHBOARD_SQL = f"""
SELECT
    model,
    CASE WHEN COUNT(DISTINCT provider) = 1 THEN MAX(provider) ELSE 'mixed' END AS provider,
    CASE WHEN COUNT(DISTINCT location) = 1 THEN MAX(location) ELSE 'mixed' END AS location,
    COUNT(*) AS total,
    SUM(status = 'success') AS successes,
    SUM(status = 'invalid') AS invalid,
    SUM(status = 'failed') AS failures,
    SUM({_IS_FALLBACK}) AS fallbacks,
    AVG(status = 'success') AS success_rate,
    AVG({_IS_FALLBACK}) AS fallback_rate,
    AVG(generation_time_s) AS avg_time_s,
    COALESCE(SUM(input_tokens), 0) AS input_tokens,
    COALESCE(SUM(output_tokens), 0) AS output_tokens,
    MAX(created_at) AS last_used
FROM {REQUESTS_TABLE}
GROUP BY model
ORDER BY total DESC, model
"""


@dataclass(frozen=True)
class ModelStats:
    """Dashboard line for one model (the ``model`` column of its rows).

    ``provider``/``location`` are "mixed" if the model's rows disagree.
    ``successes + invalid + failures == total``. ``fallbacks`` counts rows
    with ``location == "cloud"`` or a ``fallback_reason`` (the request left
    the local path), so a cloud model's fallback_rate is 1.0 by construction.
    Rates are fractions in [0, 1]; ``avg_time_s`` averages the non-null
    ``generation_time_s`` (None if there are none).
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

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
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
    def in_data_dir(cls, data_dir: Path) -> UsageStore:
        """Open ``data_dir / "usage.db"``, creating it if needed."""
        return cls(data_dir / DB_FILENAME)

    async def record(self, row: UsageRow) -> int:
        """Insert ``row`` off the event loop; return its id."""
        return await asyncio.to_thread(self.record_sync, row)

    def record_sync(self, row: UsageRow) -> int:
        """Insert ``row``; return its id. Raises UsageStoreError on database errors."""
        with self._lock:
            self._ensure_open()
            try:
                table = self._db.table(REQUESTS_TABLE).insert(row.to_dict(), alter=False)
            except sqlite3.Error as exc:
                raise UsageStoreError(f"{self.path}: could not record usage ({exc})") from exc
            if table.last_rowid is None:
                raise UsageStoreError(f"{self.path}: insert returned no row id")
            return int(table.last_rowid)

    def dashboard(self) -> list[ModelStats]:
        """Return per-model statistics, busiest model first."""
        return [ModelStats(**row) for row in self._query(_DASHBOARD_SQL)]

    def recent(self, limit: int = 20) -> list[dict[str, object]]:
        """Return the latest ``limit`` rows (all columns), newest first."""
        return self._query(f"SELECT * FROM {REQUESTS_TABLE} ORDER BY id DESC LIMIT ?", (limit,))

    def count(self) -> int:
        """Return the number of recorded requests."""
        rows = self._query(f"SELECT COUNT(*) AS n FROM {REQUESTS_TABLE}")
        return int(rows[0]["n"])

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[dict[str, Any]]:
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
