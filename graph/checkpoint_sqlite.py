"""The SQLite checkpointer, run on the event loop: LangGraph's SqliteSaver with its async methods.

Why not AsyncSqliteSaver (aiosqlite): it sends each statement to a worker thread and back, and a
request runs about six of them (read the thread, write the checkpoint and its writes, commit).
The hops cost ~2 ms per request; the statements themselves, on a local file in WAL mode with
synchronous=NORMAL, take tens of microseconds, less than one hop.

The loop must still never wait for another process's lock: the busy timeout is 0 on the loop
(`without_waiting`), and a statement that finds the database locked (SQLITE_BUSY) is run again
in a worker thread with the full busy timeout. An asyncio lock keeps one call at a time, so the loop
never blocks on the saver's own thread lock while that thread waits.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver
from typing_extensions import override

from database.sqlite_wait import without_waiting

T = TypeVar("T")
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class LoopSqliteSaver(SqliteSaver):
    """SqliteSaver whose async interface runs its statements on the loop (see the module doc)."""

    def __init__(self, conn: sqlite3.Connection, *, busy_timeout: float) -> None:
        super().__init__(conn)
        self._busy_ms = int(busy_timeout * 1000)
        self._serial = asyncio.Lock()

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float) -> LoopSqliteSaver:
        """Open (creating) the file: WAL, synchronous=NORMAL, tables set up."""
        conn = sqlite3.connect(path, check_same_thread=False)  # the BUSY path runs in a thread
        # busy_timeout first: switching to WAL needs a lock another process may briefly hold.
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # WAL + NORMAL: a commit no longer waits for an fsync of the whole database.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = cls(conn, busy_timeout=busy_timeout)
        saver.setup()
        return saver

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._serial:
            try:
                with without_waiting(self.conn, self._busy_ms):
                    return call(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _BUSY:
                    raise
            return await asyncio.to_thread(call, *args, **kwargs)  # another process holds the file

    @override
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self.get_tuple, config)

    @override
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await self._run(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    @override
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._run(self.put, config, checkpoint, metadata, new_versions)

    @override
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._run(self.put_writes, config, writes, task_id, task_path)

    @override
    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self.delete_thread, thread_id)

    @override
    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._run(self.get_delta_channel_history, config=config, channels=channels)
