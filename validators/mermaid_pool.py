"""The process's Mermaid worker: started on first use, shared, respawned when it dies or hangs.

One Node process serves every ``Validators`` of the Python process (each holds a lease; the last
release stops it). Its pipes live on a private background loop, so callers on any event loop
share it; once it runs, each caller's loop sends its checks over a socket of its own
(``validators.mermaid_channel``) and only starts, deaths and shutdown go through that loop.
A request that finds the worker dead is retried once on a fresh one; a request that times out
kills the worker (a hung worker blocks everything queued behind it) and is reported.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from validators.background import BackgroundLoop
from validators.mermaid_channel import Channel, ChannelClosed
from validators.mermaid_process import NodeProcess, WorkerDied, WorkerUnavailable, worker_script

log = logging.getLogger(__name__)

# After a failed start, requests use the header check for this long before we try again: a
# missing `node` must not cost a spawn per request, yet `npm ci` in a running server is picked up.
RESTART_COOLDOWN_S = 30.0


@dataclass(frozen=True)
class ParseResult:
    """The official parser's answer for one diagram."""

    valid: bool
    diagram_type: str | None
    """Mermaid's own id of the detected type ("flowchart-v2", "er", "classDiagram", ...)."""
    error: str | None
    """For an invalid diagram: one line, "line 3: unexpected '-' (MINUS)"."""
    details: str | None
    """The offending source line with a caret, and what the parser expected there."""
    line: int | None
    ms: float


@dataclass(frozen=True)
class ParseFailure:
    """The parser could not judge the diagram."""

    kind: Literal["unavailable", "timeout", "crashed"]
    message: str


class MermaidWorker:
    """A lazily started, self-healing Node worker; use ``shared_worker`` for the process's one."""

    def __init__(self, *, node: str = "node", script: Path | None = None) -> None:
        """`script`: the worker to run; by default the bundle if it is current (`worker_script`)."""
        self._node, self._script = node, script
        self._loop = BackgroundLoop("mermaid-worker")
        self._lock = threading.Lock()
        self._leases = 0
        # One per event loop; no lock (a check must not wait on one): each loop touches its own key.
        self._channels: dict[asyncio.AbstractEventLoop, Channel] = {}
        # Touched only on the background loop:
        self._process: NodeProcess | None = None
        self._starting: asyncio.Task[NodeProcess] | None = None
        self._unavailable: tuple[float, str] | None = None  # (retry after, why)
        self.starts = 0
        """How many Node processes this worker has started (a respawn adds one)."""

    @property
    def pid(self) -> int | None:
        """The running Node process's id, if any."""
        process = self._process
        return process.pid if process is not None and process.alive else None

    @property
    def warm(self) -> dict[str, Any] | None:
        """The running process's warm-up report, once every diagram type has been parsed."""
        process = self._process
        return process.warm if process is not None else None

    # -- leases --------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take a lease: the worker keeps running until every lease is released."""
        with self._lock:
            self._leases += 1

    def _drop_lease(self) -> bool:
        with self._lock:
            self._leases = max(0, self._leases - 1)
            return self._leases == 0

    async def release(self) -> None:
        """Give a lease back; the last one stops the Node process."""
        if self._drop_lease():
            await self.aclose()

    def release_sync(self) -> None:
        """``release`` for synchronous callers (test fixtures)."""
        if self._drop_lease():
            self.close()

    # -- parsing -------------------------------------------------------------------------

    async def parse(self, code: str, *, timeout: float, start_timeout: float) -> ParseResult | ParseFailure:
        """Parse one diagram with the official parser, starting the worker if needed."""
        process = self._process
        if process is not None and process.alive and process.socket is not None:
            try:
                async with asyncio.timeout(timeout):
                    return _result(await self._channel(process, process.socket).request(code))
            except TimeoutError:
                await self._loop.run(self._discard(process))
                return _hung(process, timeout)
            except ChannelClosed:
                pass  # the worker is going or gone: the pipe path retries on a fresh one
        return await self._loop.run(self._parse(code, timeout, start_timeout))

    def _channel(self, process: NodeProcess, socket: str) -> Channel:
        """The calling loop's connection to `process`, opened on first use."""
        loop = asyncio.get_running_loop()
        channel = self._channels.get(loop)
        if channel is None or channel.closed or channel.pid != process.pid:
            for gone in [other for other in list(self._channels) if other.is_closed()]:
                self._channels.pop(gone, None)  # a finished asyncio.run's loop: its socket is closed
            channel = self._channels[loop] = Channel(socket, process.pid)
        return channel

    def start_soon(self, start_timeout: float) -> None:
        """Start the worker in the background if it is not running; nothing waits for it."""
        process = self._process
        if process is not None and process.alive:
            return  # the common case, every request: no hop to the background thread for nothing
        self._loop.submit(self._prestart(start_timeout))

    async def _prestart(self, start_timeout: float) -> None:
        with contextlib.suppress(WorkerUnavailable):
            await self._running(start_timeout)

    async def _parse(self, code: str, timeout: float, start_timeout: float) -> ParseResult | ParseFailure:
        death = ""
        for attempt in (1, 2):
            try:
                process = await self._running(start_timeout)
            except WorkerUnavailable as exc:
                return ParseFailure("unavailable", str(exc))
            try:
                async with asyncio.timeout(timeout):
                    reply = await process.request(code)
            except TimeoutError:
                await self._discard(process)
                return _hung(process, timeout)
            except WorkerDied as exc:
                death = str(exc)
                log.warning(
                    "Mermaid worker %d died (%s)%s", process.pid, death, "; retrying" * (attempt == 1)
                )
                await self._discard(process)
                continue
            return _result(reply)
        return ParseFailure("crashed", f"the Mermaid parser crashed twice on this diagram ({death})")

    async def _running(self, start_timeout: float) -> NodeProcess:
        if self._process is not None and self._process.alive:
            return self._process
        if self._unavailable is not None and time.monotonic() < self._unavailable[0]:
            raise WorkerUnavailable(self._unavailable[1])
        if self._starting is None:  # one start, however many requests wait for it
            self._starting = asyncio.create_task(self._start(start_timeout))
            self._starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(self._starting)

    async def _start(self, start_timeout: float) -> NodeProcess:
        try:
            if self._process is not None:
                await self._process.kill()
                self._process = None
            started = time.perf_counter()
            process = await NodeProcess.start(self._node, self._script or worker_script(), start_timeout)
        except WorkerUnavailable as exc:
            self._unavailable = (time.monotonic() + RESTART_COOLDOWN_S, str(exc))
            log.warning("Mermaid parser unavailable (%s); Mermaid is checked by its header only", exc)
            raise
        finally:
            self._starting = None
        log.info("Mermaid worker %d started in %.2f s", process.pid, time.perf_counter() - started)
        self.starts += 1
        self._unavailable = None
        self._process = process
        return process

    async def _discard(self, process: NodeProcess) -> None:
        if self._process is process:
            self._process = None
        await process.kill()

    # -- shutdown ------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(WorkerUnavailable):
                await asyncio.shield(self._starting)
        if self._process is not None:
            await self._process.stop()
            self._process = None
        self._unavailable = None

    async def aclose(self) -> None:
        """Stop the Node process and the background loop (a later ``parse`` starts them again)."""
        if self._loop.started:
            await self._loop.run(self._shutdown())
            self._stop_loop()

    def close(self, *, at_exit: bool = False) -> None:
        """``aclose`` for synchronous callers; ``at_exit`` stops everything, leases or not."""
        if self._loop.started:
            self._loop.run_sync(self._shutdown(), timeout=10)
            self._stop_loop(force=at_exit)

    def _stop_loop(self, *, force: bool = False) -> None:
        # Under the lease lock: a Validators that took a lease while the process was stopping
        # keeps the loop (and starts a new process on its next check) instead of losing it.
        with self._lock:
            if self._leases == 0 or force:
                self._loop.stop()


def _hung(process: NodeProcess, timeout: float) -> ParseFailure:
    log.warning("Mermaid worker %d did not answer within %g s; killed it", process.pid, timeout)
    return ParseFailure("timeout", f"the Mermaid parser did not answer within {timeout:g} s")


def _result(reply: dict[str, Any]) -> ParseResult:
    valid = bool(reply.get("valid"))
    error = None if valid else str(reply.get("error") or "the Mermaid parser rejected the diagram")
    line = reply.get("line")
    return ParseResult(
        valid=valid,
        diagram_type=reply.get("type"),
        error=error,
        details=None if valid else reply.get("details") or None,
        line=line if isinstance(line, int) else None,
        ms=float(reply.get("ms") or 0.0),
    )


_shared: dict[str, MermaidWorker] = {}
_shared_lock = threading.Lock()


def shared_worker(node: str = "node") -> MermaidWorker:
    """The process-wide worker for ``node``, created on first call and stopped at exit.

    Process-wide on purpose: starting Node and importing mermaid costs about a second, and every
    request, router and test of the process can share one warm parser.
    """
    with _shared_lock:
        worker = _shared.get(node)
        if worker is None:
            worker = _shared[node] = MermaidWorker(node=node)
            atexit.register(worker.close, at_exit=True)
        return worker
