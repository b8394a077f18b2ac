"""One event loop's connection to the Mermaid worker's Unix socket: a check without a thread hop.

The worker's pipes live on a background loop (``validators.mermaid_pool``), so a check sent
through them crosses threads twice: ~0.5 ms on a quiet machine, more when the caller's loop is
busy and the background thread waits for the GIL (bench/results.md). Each loop that checks
diagrams opens its own connection instead and awaits the replies on itself. Anything wrong with
the connection raises ChannelClosed; the caller then takes the pipe path, which restarts a dead
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from validators.mermaid_process import LINE_LIMIT, parse_reply


class ChannelClosed(Exception):
    """The connection could not be opened or has ended: the worker may be gone."""


class Channel:
    """Requests to one worker process from the event loop that made it, matched to replies by id."""

    def __init__(self, path: str, pid: int) -> None:
        self.pid = pid
        """The worker process this connection reaches (a respawned worker needs a new channel)."""
        self._path = path
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._opening: asyncio.Task[None] | None = None
        self.closed = False

    async def request(self, code: str) -> dict[str, Any]:
        """Send one diagram and wait for its reply (the caller bounds the wait)."""
        if self._writer is None:
            if self._opening is None:  # one connection, however many checks wait for it
                self._opening = asyncio.ensure_future(self._open())
            await asyncio.shield(self._opening)
        writer = self._writer
        if self.closed or writer is None or writer.is_closing():
            raise ChannelClosed("the connection to the Mermaid worker has ended")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            # No drain: a diagram is a few KB and the transport buffers whatever the socket cannot take.
            writer.write(json.dumps({"id": request_id, "code": code}).encode() + b"\n")
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _open(self) -> None:
        try:
            reader, self._writer = await asyncio.open_unix_connection(self._path, limit=LINE_LIMIT)
        except OSError as exc:
            self.closed = True
            raise ChannelClosed(f"cannot connect to the Mermaid worker ({exc})") from None
        reader_task = asyncio.create_task(self._read(reader, self._writer), name="mermaid-channel")
        reader_task.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for raw in reader:
                message = parse_reply(raw)
                future = None if message is None else self._pending.get(message.get("id", -1))
                if message is not None and future is not None and not future.done():
                    future.set_result(message)
        except (OSError, ValueError):  # reset, or a line over the limit
            pass
        finally:
            # Also when the loop ends and cancels this task: the socket is closed with it.
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ChannelClosed("the Mermaid worker closed the connection"))
            with contextlib.suppress(RuntimeError):  # the loop may already be closing
                writer.close()
