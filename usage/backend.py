"""What UsageStore needs of a database: one insert, one update, queries, close.

SQL is written once, SQLite-style (``?`` and ``:name`` parameters) and valid on both engines;
the PostgreSQL backend translates the parameter marks. Callers hold the store's lock, so a
backend need not be thread-safe. Write failures raise UsageStoreError naming ``where``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Params = Sequence[object] | Mapping[str, object]


class Backend(Protocol):
    """One long-lived connection to the usage table."""

    where: str
    """Names the database in messages: the file, or PostgreSQL's host:port/database (no password)."""

    def insert(self, table: str, values: Mapping[str, object]) -> int:
        """Insert one row, committed at once; return its id."""
        ...

    def update(self, sql: str, params: Params) -> int:
        """Run one UPDATE, committed at once; return how many rows it changed."""
        ...

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` as dicts."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...
