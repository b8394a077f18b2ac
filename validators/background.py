"""An event loop in a daemon thread, for a resource shared by every event loop of the process.

An asyncio subprocess belongs to the loop that started it. The Mermaid worker must outlive any
one caller's loop (``asyncio.run`` per CLI command, one loop per test, the dev server's loop),
so its pipes live on this private loop and callers await it through ``run``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """Starts its thread on first use; ``stop`` ends it (a later ``run`` starts a new one)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._serve, args=(loop, ready), name=self._name, daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the background loop and await its result from the caller's loop.

        Cancelling the caller cancels the coroutine on the background loop too.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        return await asyncio.wrap_future(future)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` on the background loop without waiting; its outcome is not needed."""
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        future.add_done_callback(lambda done: done.cancelled() or done.exception())

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the background loop from synchronous code (exit handlers, fixtures)."""
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop()).result(timeout)

    @property
    def started(self) -> bool:
        """Whether the thread is running."""
        return self._loop is not None

    def stop(self) -> None:
        """Stop the loop and join its thread; the caller has finished everything running on it."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
