"""The usage table in ``usage.db``: one sqlite-utils connection, WAL, numbered migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from database.sqlite_wait import without_waiting
from usage.backend import Params
from usage.errors import UsageStoreError
from usage.migrations import Migration, apply_migrations

BUSY_TIMEOUT_MS = 5000


def _connect(path: Path) -> sqlite3.Connection:
    # One long-lived connection shared by the event loop thread and the
    # to_thread workers; the store's lock serialises every use of it.
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        # busy_timeout first: switching to WAL needs a lock another process
        # may briefly hold.
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteBackend:
    """``usage.db`` through sqlite-utils (its savepoints are why the store serialises every use)."""

    def __init__(self, path: Path, migrations: Sequence[Migration]) -> None:
        self.path = path
        self.where = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = _connect(path)
        except sqlite3.DatabaseError as exc:
            raise _open_error(path, exc) from exc
        try:
            self.db = Database(conn, execute_plugins=False)
            apply_migrations(self.db, migrations)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _open_error(path, exc) from exc
            if isinstance(exc, UsageStoreError):
                raise UsageStoreError(f"{path}: {exc}") from exc
            raise

    def no_wait(self) -> AbstractContextManager[None]:
        """Within it, a statement that finds the file locked by another process fails at once."""
        return without_waiting(self.db.conn, BUSY_TIMEOUT_MS)

    @property
    def conn(self) -> sqlite3.Connection:
        """The one connection (tests write old-schema rows through it)."""
        return self.db.conn

    def insert(self, table: str, values: Mapping[str, object]) -> int:
        """Plain SQL, committed at once: a SIGKILL right after must find the row on disk.

        (sqlite-utils' insert costs ~3x more for one row: it inspects the table.)
        """
        sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})"
        try:
            with self.db.conn:
                cursor = self.db.conn.execute(sql, tuple(values.values()))
        except sqlite3.Error as exc:
            raise UsageStoreError(f"{self.path}: could not record usage ({exc})") from exc
        if cursor.lastrowid is None:
            raise UsageStoreError(f"{self.path}: insert returned no row id")
        return int(cursor.lastrowid)

    def update(self, sql: str, params: Params) -> int:
        """Run ``sql`` committed at once; rows changed."""
        try:
            with self.db.conn:
                cursor = self.db.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise UsageStoreError(f"{self.path}: could not record usage ({exc})") from exc
        return cursor.rowcount

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as dicts."""
        return list(self.db.query(sql, params if isinstance(params, Sequence) else dict(params)))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


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
