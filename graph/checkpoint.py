"""The checkpointer: SQLite in the data dir, or PostgreSQL when MODELYARD_DATABASE_URL names it.

SQLite: one long-lived connection, WAL, synchronous=NORMAL. PostgreSQL: graph/checkpoint_postgres.py,
imported only then (psycopg stays off the SQLite path).
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from config.database_url import parse_database_url

CHECKPOINT_FILE = "checkpoints.db"
BUSY_TIMEOUT_S = 5.0


async def open_checkpointer(
    data_dir: Path, *, busy_timeout: float = BUSY_TIMEOUT_S, database_url: str | None = None
) -> BaseCheckpointSaver[str]:
    """Open (creating) the checkpoint tables; close them with `close_checkpointer`.

    `database_url`: a PostgreSQL URL (the config's `database_url`), else the file in `data_dir`.
    `busy_timeout`: seconds a SQLite write waits for another process's lock before it fails.
    """
    if database_url:
        from graph.checkpoint_postgres import open_postgres_saver

        return await open_postgres_saver(parse_database_url(database_url))
    return await open_sqlite_saver(data_dir, busy_timeout=busy_timeout)


async def open_sqlite_saver(data_dir: Path, *, busy_timeout: float = BUSY_TIMEOUT_S) -> AsyncSqliteSaver:
    """The checkpoint file in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(data_dir / CHECKPOINT_FILE)
    # busy_timeout first: switching to WAL needs a lock another process may briefly hold.
    await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    # WAL + NORMAL: a commit no longer waits for an fsync of the whole database (8 ms -> ~5 ms).
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    return saver


async def close_checkpointer(saver: BaseCheckpointSaver[str]) -> None:
    """Close the saver's connection (an open one keeps the process alive)."""
    if isinstance(saver, AsyncSqliteSaver):
        await saver.conn.close()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from graph.checkpoint_postgres import close_postgres_saver

    if isinstance(saver, AsyncPostgresSaver):
        await close_postgres_saver(saver)
