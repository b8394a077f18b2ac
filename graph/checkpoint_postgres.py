"""LangGraph checkpoints on PostgreSQL (MODELYARD_DATABASE_URL): several app processes share threads.

Imported only when the URL names PostgreSQL. LangGraph's own migrations run once per start, under
an advisory lock so that processes starting together do not race on them. Then a pool of one
connection serves the saver (which serialises its statements anyway); the pool replaces a
connection the server dropped instead of failing every later request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from config.database_url import DatabaseUrl
from database.connect import CONNECT_TIMEOUT_S, connect_async, connect_kwargs
from database.errors import DatabaseUnavailableError

SETUP_LOCK_KEY = 0x6D79_4350  # "myCP"; the usage and chat migrations use their own keys
SETUP_WAIT_S = 60.0
_POLL_S = 0.05


async def open_postgres_saver(url: DatabaseUrl) -> AsyncPostgresSaver:
    """Set the checkpoint tables up (once, whoever starts first) and return a saver on a pool."""
    setup_conn = await connect_async(url)
    try:
        await _setup_locked(setup_conn, url)
    finally:
        await setup_conn.close()
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        url.raw,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, **connect_kwargs()},
        check=AsyncConnectionPool.check_connection,
        name="modelyard-checkpoints",
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout:
        await pool.close()
        raise DatabaseUnavailableError(
            f"MODELYARD_DATABASE_URL: PostgreSQL at {url.display()} accepted one connection, then "
            f"none within {CONNECT_TIMEOUT_S} s; check its max_connections"
        ) from None
    return AsyncPostgresSaver(pool)


async def close_postgres_saver(saver: AsyncPostgresSaver) -> None:
    """Close the saver's pool (or connection)."""
    await saver.conn.close()


async def _setup_locked(conn: AsyncConnection[DictRow], url: DatabaseUrl) -> None:
    # A session lock taken by polling, not a blocking pg_advisory_lock: LangGraph's migrations
    # build indexes CONCURRENTLY, which waits for every open transaction, a blocked waiter's too.
    deadline = time.monotonic() + SETUP_WAIT_S
    while not await _try_lock(conn):
        if time.monotonic() > deadline:
            raise DatabaseUnavailableError(
                f"MODELYARD_DATABASE_URL: PostgreSQL at {url.display()}: another process held the "
                f"checkpoint set-up lock for {SETUP_WAIT_S:.0f} s"
            )
        await asyncio.sleep(_POLL_S)
    try:
        await AsyncPostgresSaver(conn).setup()
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))


async def _try_lock(conn: AsyncConnection[DictRow]) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK_KEY,))
    row: dict[str, Any] | None = await cursor.fetchone()
    return bool(row and row["locked"])
