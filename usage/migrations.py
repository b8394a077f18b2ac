"""Numbered, append-only schema migrations for usage.db (PostgreSQL: usage/pg_migrations.py).

To change the schema, append a ``Migration`` with the next id; never edit or
reorder applied ones. ``apply_migrations`` runs at every open and is a no-op
when everything is recorded in ``_migrations``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from usage.errors import UsageStoreError
from usage.row import now_iso

MIGRATIONS_TABLE = "_migrations"
REQUESTS_TABLE = "requests"


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply`` runs inside a transaction."""

    id: int
    name: str
    apply: Callable[[Database], None]


def _create_requests(db: Database) -> None:
    # Spelled out instead of derived from UsageRow: a migration is a frozen
    # snapshot, later UsageRow fields need their own migration.
    db.table(REQUESTS_TABLE).create(
        {
            "id": int,
            "thread_id": str,
            "task_type": str,
            "model": str,
            "provider": str,
            "location": str,
            "status": str,
            "fallback_reason": str,
            "local_model": str,
            "load_time_s": float,
            "first_token_s": float,
            "generation_time_s": float,
            "input_tokens": int,
            "output_tokens": int,
            "validation": str,
            "validation_error": str,
            "attempts": int,
            "error_message": str,
            "created_at": str,
        },
        pk="id",
        not_null={"thread_id", "task_type", "model", "provider", "location", "status"}
        | {"attempts", "created_at"},
    )
    requests = db.table(REQUESTS_TABLE)
    requests.create_index(["model"], index_name="idx_requests_model")
    requests.create_index(["created_at"], index_name="idx_requests_created_at")


# Migration 2's backfill, shared with the PostgreSQL migrations (usage/pg_migrations.py).
BACKFILL_OUTCOMES_SQL = f"""UPDATE {REQUESTS_TABLE} SET
    local_outcome = CASE
        WHEN location = 'local' AND status = 'success' THEN 'valid'
        WHEN location = 'local' AND status = 'invalid' THEN 'invalid'
        WHEN fallback_reason = 'invalid_output' THEN 'invalid'
        ELSE 'failed' END,
    cloud_model = CASE WHEN location = 'cloud' THEN model END,
    cloud_provider = CASE WHEN location = 'cloud' THEN provider END,
    cloud_attempts = CASE WHEN location = 'cloud' THEN 1 ELSE 0 END,
    cloud_input_tokens = CASE WHEN location = 'cloud' THEN input_tokens END,
    cloud_output_tokens = CASE WHEN location = 'cloud' THEN output_tokens END"""
BACKFILL_LOCAL_MODEL_SQL = (
    f"UPDATE {REQUESTS_TABLE} SET local_model = model WHERE local_model IS NULL AND location = 'local'"
)


def _add_model_outcomes(db: Database) -> None:
    # Frozen like migration 1: the columns that credit the local model and the cloud model of
    # a request separately (issue 8), and a backfill of older rows from what they recorded.
    requests = db.table(REQUESTS_TABLE)
    for name, kind in (
        ("local_outcome", str),
        ("cloud_model", str),
        ("cloud_provider", str),
        ("cloud_attempts", int),
        ("cloud_input_tokens", int),
        ("cloud_output_tokens", int),
    ):
        requests.add_column(name, kind)
    db.execute(BACKFILL_OUTCOMES_SQL)
    db.execute(BACKFILL_LOCAL_MODEL_SQL)
    requests.create_index(["local_model"], index_name="idx_requests_local_model")
    requests.create_index(["cloud_model"], index_name="idx_requests_cloud_model")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create_requests", _create_requests),
    Migration(2, "add_model_outcomes", _add_model_outcomes),
)


def applied_migrations(db: Database) -> list[int]:
    """Return the ids recorded in ``_migrations``, ascending."""
    rows = db.execute(f"SELECT id FROM {MIGRATIONS_TABLE} ORDER BY id").fetchall()
    return [int(row[0]) for row in rows]


def _check_sequence(migrations: Sequence[Migration]) -> None:
    ids = [migration.id for migration in migrations]
    if ids != list(range(1, len(ids) + 1)):
        raise ValueError(f"migration ids must be 1..n in order, got {ids}")


def apply_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded, in order; return the ids applied now.

    Everything runs in one ``BEGIN IMMEDIATE`` transaction: two processes
    opening the same file (UI and CLI) serialise on the write lock instead of
    both applying a step, and a failing step leaves the schema untouched.
    """
    _check_sequence(migrations)
    db.execute("BEGIN IMMEDIATE")
    try:
        applied = _apply_pending(db, migrations)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return applied


def _apply_pending(db: Database, migrations: Sequence[Migration]) -> list[int]:
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = set(applied_migrations(db))
    unknown = sorted(done - {migration.id for migration in migrations})
    if unknown:
        # Written by a newer modelyard; writing with an older idea of the
        # schema could damage it, so refuse.
        raise UsageStoreError(f"database has migrations {unknown} this version does not know")
    applied: list[int] = []
    for migration in migrations:
        if migration.id not in done:
            migration.apply(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (id, name, applied_at) VALUES (?, ?, ?)",
                (migration.id, migration.name, now_iso()),
            )
            applied.append(migration.id)
    return applied
