"""The one SQLite helper here: a statement that must not wait for another process's lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_waiting(conn: sqlite3.Connection, busy_timeout_ms: int) -> Iterator[None]:
    """Busy timeout 0 within, `busy_timeout_ms` again after.

    For a statement run on the event loop: finding the file locked by another process, it fails
    at once (SQLITE_BUSY) instead of blocking the loop, and the caller runs it again in a thread,
    where the connection's usual timeout applies.
    """
    conn.execute("PRAGMA busy_timeout=0")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
