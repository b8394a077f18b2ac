"""The checkpointer: SQLite in the data dir, or PostgreSQL when MODELYARD_DATABASE_URL names it.

SQLite: one long-lived connection, WAL, synchronous=NORMAL, statements on the loop
(graph/checkpoint_sqlite.py). PostgreSQL: graph/checkpoint_postgres.py,
imported only then (psycopg stays off the SQLite path).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from config.database_url import parse_database_url
from graph.checkpoint_sqlite import LoopSqliteSaver

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


async def open_sqlite_saver(data_dir: Path, *, busy_timeout: float = BUSY_TIMEOUT_S) -> LoopSqliteSaver:
    """The checkpoint file in `data_dir` (graph/checkpoint_sqlite.py: why it runs on the loop)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CHECKPOINT_FILE
    return await asyncio.to_thread(LoopSqliteSaver.open, path, busy_timeout=busy_timeout)


async def close_checkpointer(saver: BaseCheckpointSaver[str]) -> None:
    """Close the saver's connection (an open one keeps the process alive)."""
    if isinstance(saver, LoopSqliteSaver):
        saver.close()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from graph.checkpoint_postgres import close_postgres_saver

    if isinstance(saver, AsyncPostgresSaver):
        await close_postgres_saver(saver)
