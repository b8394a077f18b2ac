"""One running Node Mermaid worker (worker.mjs): JSON lines in, JSON lines out, answers matched by id.

Errors, as raised here and turned into outcomes by ``validators.mermaid_pool``::

    WorkerError
    +-- WorkerUnavailable   node missing, or the worker could not start (no fix by retrying now)
    +-- WorkerDied          the process exited while requests were pending (retry on a new one)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORKER_DIR = Path(__file__).with_name("mermaid_worker")
WORKER_SCRIPT = WORKER_DIR / "worker.mjs"
WORKER_BUNDLED = WORKER_DIR / "worker.cjs"
"""Runs worker.mjs as `npm ci` built it (build.mjs): one script and V8's code cache, ~0.8 s faster."""
_BUILT = "worker.bundle.js"
_BUILT_FROM = ("worker.mjs", "errors.mjs", "build.mjs", "patches.mjs", "package-lock.json")
LINE_LIMIT = 1 << 20  # replies are small; a long diagram's error snippet stays well under this
_STDERR_LINES = 50


def worker_script(directory: Path = WORKER_DIR) -> Path:
    """worker.cjs when the bundle is at least as new as everything it was built from, else worker.mjs.

    A stale bundle would run old code: after an edit without `npm ci` (or `make setup`) the
    source runs instead, slower to start but current.
    """
    try:
        built = (directory / _BUILT).stat().st_mtime
    except FileNotFoundError:
        return directory / WORKER_SCRIPT.name
    sources = (directory / name for name in _BUILT_FROM)
    if any(path.exists() and path.stat().st_mtime > built for path in sources):
        log.info("the Mermaid worker's bundle is older than its sources: running worker.mjs (run `npm ci`)")
        return directory / WORKER_SCRIPT.name
    return directory / WORKER_BUNDLED.name


def parse_reply(raw: bytes) -> dict[str, Any] | None:
    """One line the worker wrote (on its pipe or a socket); None, logged, when it is not a JSON object."""
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        log.warning("Mermaid worker wrote a line that is not a JSON object: %r", raw[:200])
        return None
    return message


class WorkerError(Exception):
    """The worker could not answer."""


class WorkerUnavailable(WorkerError):
    """Node is missing or the worker does not start."""


class WorkerDied(WorkerError):
    """The worker process ended with requests in flight."""


class NodeProcess:
    """A started worker; create with ``start``, end with ``stop`` or ``kill``."""

    def __init__(self, proc: asyncio.subprocess.Process, socket_dir: str) -> None:
        self._proc = proc
        self._socket_dir = socket_dir
        self.socket: str | None = None
        """The worker's Unix socket (from its "ready" event): requests from any event loop."""
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self.warm: dict[str, Any] | None = None
        """The worker's warm-up report, once it has parsed a sample of every diagram type."""
        self._readers = [
            asyncio.create_task(self._read_replies(), name="mermaid-worker-stdout"),
            asyncio.create_task(self._read_stderr(), name="mermaid-worker-stderr"),
        ]

    @classmethod
    async def start(cls, node: str, script: Path, timeout: float) -> NodeProcess:
        """Spawn ``node script`` and wait (at most ``timeout`` s) until mermaid is imported."""
        # Private (mode 0700). File calls off the loop: `langgraph dev` fails a run that blocks it.
        socket_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="modelyard-mermaid-")
        env = {**os.environ, "MODELYARD_MERMAID_SOCKET": os.path.join(socket_dir, "worker.sock")}
        try:
            proc = await asyncio.create_subprocess_exec(
                node,
                str(script),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=script.parent,
                limit=LINE_LIMIT,
                env=env,
            )
        except FileNotFoundError:
            await _remove(socket_dir)
            raise WorkerUnavailable(
                f"Node.js not found ({node!r} is not on PATH); install Node >= 20"
            ) from None
        except PermissionError as exc:
            await _remove(socket_dir)
            raise WorkerUnavailable(f"cannot run Node.js ({node!r}): {exc.strerror}") from None
        process = cls(proc, socket_dir)
        try:
            async with asyncio.timeout(timeout):
                hello = await asyncio.shield(process._ready)
        except TimeoutError:
            await process.kill()
            raise WorkerUnavailable(f"the Mermaid worker did not start within {timeout:g} s") from None
        except WorkerDied as exc:
            await process.kill()
            raise WorkerUnavailable(f"the Mermaid worker failed to start: {exc}") from None
        log.info("Mermaid worker %d ready (mermaid %s)", proc.pid, hello.get("mermaid"))
        socket = hello.get("socket")
        process.socket = socket if isinstance(socket, str) else None
        return process

    @property
    def pid(self) -> int:
        """The Node process id."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """False once the process has exited or its output has ended."""
        return self._proc.returncode is None and not self._readers[0].done()

    async def request(self, code: str) -> dict[str, Any]:
        """Send one diagram and wait for its reply (the caller bounds the wait)."""
        if not self.alive:
            raise WorkerDied(self._death())
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps({"id": request_id, "code": code}).encode() + b"\n")
            await self._proc.stdin.drain()
            return await future
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerDied(self._death()) from None
        finally:
            self._pending.pop(request_id, None)

    async def _read_replies(self) -> None:
        assert self._proc.stdout is not None
        try:
            async for raw in self._proc.stdout:
                self._dispatch(raw)
        except ValueError:  # a line over the limit: the protocol is broken, start afresh
            log.error("Mermaid worker wrote an over-long line; killing it")
            self._proc.kill()
        await self._proc.wait()
        error = WorkerDied(self._death())
        for future in [self._ready, *self._pending.values()]:
            if not future.done():
                future.set_exception(error)
        self._ready.exception()  # retrieved here, so an unawaited failure is not logged as lost

    def _dispatch(self, raw: bytes) -> None:
        message = parse_reply(raw)
        if message is None:
            return
        if message.get("event") == "ready" and not self._ready.done():
            self._ready.set_result(message)
        elif message.get("event") == "warm":
            self.warm = message
            log.info("Mermaid worker warmed %s diagram types in %s ms", message["types"], message["ms"])
        elif (future := self._pending.get(message.get("id", -1))) is not None and not future.done():
            future.set_result(message)

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        async for raw in self._proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            log.debug("mermaid worker: %s", line)

    def _death(self) -> str:
        lines = [line.strip() for line in self._stderr if line.strip()]
        # Node prints the error, then a stack: the "...Error..." line says what went wrong.
        cause = next(
            (line for line in lines if "Error" in line and " at " not in line[:4]), lines[-1] if lines else ""
        )
        hint = (
            " (run `npm ci` in validators/mermaid_worker)" if "ERR_MODULE_NOT_FOUND" in "".join(lines) else ""
        )
        return f"exit code {self._proc.returncode}" + (f": {cause[:300]}{hint}" if cause else "")

    async def stop(self, grace: float = 2.0) -> None:
        """Close stdin (the worker exits when it ends) and wait; kill it if it lingers."""
        if self._proc.returncode is None and self._proc.stdin is not None:
            self._proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._proc.wait()
        await self.kill()

    async def kill(self) -> None:
        """End the process now (it may be hung) and collect it and its pipes."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self._proc.wait()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await _remove(self._socket_dir)


async def _remove(directory: str) -> None:
    try:
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
    except RuntimeError:  # at interpreter exit no thread starts; nothing else runs on this loop then
        shutil.rmtree(directory, ignore_errors=True)
