"""The usage table on PostgreSQL (MODELYARD_DATABASE_URL): one psycopg connection, autocommit.

Imported only when the URL names PostgreSQL. A connection the server dropped is replaced on the
next call, so a restarted server costs the rows written while it was down, not the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg.types.numeric import FloatLoader

from config.database_url import DatabaseUrl
from database.connect import connect
from database.migrate import SqlMigration, UnknownMigrationsError, apply_locked
from usage.backend import Params
from usage.errors import UsageStoreError
from usage.migrations import MIGRATIONS_TABLE
from usage.pg_migrations import LOCK_KEY, PG_MIGRATIONS

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """SQLite's ``?`` and ``:name`` marks as psycopg's ``%s`` and ``%(name)s`` (our SQL has no literal %)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))


class PostgresBackend:
    """The usage table on PostgreSQL; migrations applied under an advisory lock at open."""

    def __init__(self, url: DatabaseUrl, migrations: Sequence[SqlMigration] = PG_MIGRATIONS) -> None:
        self.url = url
        self.where = f"PostgreSQL at {url.display()}"
        self._conn = self._open()
        try:
            apply_locked(self._conn, migrations, table=MIGRATIONS_TABLE, lock_key=LOCK_KEY)
        except UnknownMigrationsError as exc:
            self._conn.close()
            raise UsageStoreError(f"{self.where}: {exc}") from exc
        except psycopg.Error as exc:
            self._conn.close()
            raise UsageStoreError(
                f"{self.where}: cannot prepare the usage table ({self._scrub(exc)})"
            ) from exc

    def _open(self) -> psycopg.Connection[DictRow]:
        conn = connect(self.url)
        # AVG and 1.0 * a / b are NUMERIC here; SQLite gives floats, and so must we.
        conn.adapters.register_loader("numeric", FloatLoader)
        return conn

    def _live(self) -> psycopg.Connection[DictRow]:
        if self._conn.broken or self._conn.closed:
            self._conn = self._open()
        return self._conn

    def _scrub(self, exc: BaseException) -> str:
        return " ".join(str(exc).split()).replace(self.url.raw, "[redacted]")

    def insert(self, table: str, values: Mapping[str, object]) -> int:
        """One INSERT ... RETURNING id (autocommit: durable when it returns)."""
        marks = ", ".join(["%s"] * len(values))
        sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks}) RETURNING id"
        try:
            row = self._live().execute(sql.encode(), tuple(values.values())).fetchone()
        except psycopg.Error as exc:
            raise UsageStoreError(f"{self.where}: could not record usage ({self._scrub(exc)})") from exc
        if row is None:
            raise UsageStoreError(f"{self.where}: insert returned no row id")
        return int(row["id"])

    def update(self, sql: str, params: Params) -> int:
        """Run ``sql``; rows changed."""
        try:
            cursor = self._live().execute(translate(sql).encode(), _params(params))
        except psycopg.Error as exc:
            raise UsageStoreError(f"{self.where}: could not record usage ({self._scrub(exc)})") from exc
        return cursor.rowcount

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as dicts; UsageStoreError if the server cannot answer."""
        try:
            return self._live().execute(translate(sql).encode(), _params(params)).fetchall()
        except psycopg.Error as exc:
            raise UsageStoreError(f"{self.where}: could not read usage ({self._scrub(exc)})") from exc

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _params(params: Params) -> Sequence[object] | Mapping[str, object]:
    return params if isinstance(params, Mapping) else tuple(params)
