"""Numbered migrations on PostgreSQL, safe when several processes start at the same moment.

Each set runs in one transaction that first takes a transaction-level advisory lock: a second
process waits on the lock, then finds every step recorded and applies nothing. A failing step
rolls the whole set back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class SqlMigration:
    """One schema step as SQL statements (never edited once released: append a new one)."""

    id: int
    name: str
    statements: tuple[str, ...]


class UnknownMigrationsError(Exception):
    """The database has steps this version does not know (a newer modelyard wrote it)."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(f"database has migrations {ids} this version does not know")
        self.ids = ids


def apply_locked(
    conn: psycopg.Connection[Any], migrations: Sequence[SqlMigration], *, table: str, lock_key: int
) -> list[int]:
    """Apply the steps not recorded in `table`, under advisory lock `lock_key`; return their ids."""
    from psycopg.rows import tuple_row

    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        cur.execute(f"SELECT id FROM {table}")
        done = {int(row[0]) for row in cur.fetchall()}
        unknown = sorted(done - {m.id for m in migrations})
        if unknown:
            raise UnknownMigrationsError(unknown)
        applied: list[int] = []
        for migration in migrations:
            if migration.id in done:
                continue
            for statement in migration.statements:
                cur.execute(statement.encode())  # bytes: no placeholder parsing of the DDL
            cur.execute(
                f"INSERT INTO {table} (id, name, applied_at) VALUES (%s, %s, %s)",
                (migration.id, migration.name, datetime.now(UTC).isoformat()),
            )
            applied.append(migration.id)
        return applied
