"""Shared fixtures: real emulators on loopback, a fresh data dir per test, router factories."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config import AppConfig, load_config
from graph.router import Event, ModelRouter
from nodes.response import ModelResponse
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator
from tests.postgres import PostgresServer, running_postgres
from validators import MermaidWorker, shared_worker

# Distinctive, so a test can prove it never reaches a checkpoint, a stats row or a log.
OPENAI_KEY = "sk-modelyard-test-0123456789abcdefSECRET"
MERMAID = "mermaid-mistral"


class Clock:
    """Monotonic time a test moves forward (past the /api/ps cache) instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`modelyard ARGS` in its own process, from the repository root, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def free_port() -> int:
    """A loopback port with nothing listening on it (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session", autouse=True)
def no_user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty XDG_CONFIG_HOME: a developer's ~/.config/modelyard/models.yaml, which load_config
    prefers to the packaged config, must not reach the tests (nor the CLIs they start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
        yield


@pytest.fixture(scope="session", autouse=True)
def mermaid_worker() -> Iterator[MermaidWorker]:
    """The process's Node Mermaid worker, kept warm across tests (each builds its own Services).

    Every Validators leases the shared worker and the last lease stops it; this session lease
    keeps one process for the whole run instead of one per test, and stops it at the end.
    """
    worker = shared_worker()
    worker.acquire()
    yield worker
    worker.release_sync()


@pytest.fixture
def ollama() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as emu:
        yield emu


@pytest.fixture
def cloud() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emu:
        yield emu


@dataclass
class Rig:
    """Emulators plus a data dir, and a way to build the config a test needs."""

    ollama: OllamaEmulator
    cloud: OpenAIEmulator
    data_dir: Path
    events: list[Event] = field(default_factory=list)

    def config(
        self,
        *,
        with_cloud: bool = True,
        ollama_up: bool = True,
        ollama_url: str | None = None,
        repair_attempts: int = 0,
        **ollama: Any,
    ) -> AppConfig:
        """Emulator-backed config with short limits; `ollama_url` points at another host instead."""
        host = ollama_url or (self.ollama.url if ollama_up else f"127.0.0.1:{free_port()}")
        env = {
            "OLLAMA_HOST": host,
            "MODELYARD_DATA_DIR": str(self.data_dir),
        }
        if with_cloud:
            env |= {"OPENAI_BASE_URL": self.cloud.url, "OPENAI_API_KEY": OPENAI_KEY}
        config = load_config(env=env)
        limits = {"first_token_timeout": 2.0, "timeout": 5.0, "load_timeout": 5.0, **ollama}
        return config.model_copy(
            update={
                "ollama": config.ollama.model_copy(update=limits),
                "validation": config.validation.model_copy(update={"repair_attempts": repair_attempts}),
                "fallback": config.fallback.model_copy(update={"timeout": 5.0, "max_retries": 0}),
            }
        )

    async def ask(
        self,
        config: AppConfig,
        prompt: str,
        *,
        task: str | None = "erd",
        thread: str | None = None,
        force_local: bool | None = None,
    ) -> ModelResponse:
        """One request through a fresh router; events land in `self.events`."""
        async with ModelRouter(config) as router:
            return await self.ask_with(router, prompt, task=task, thread=thread, force_local=force_local)

    async def ask_with(
        self,
        router: ModelRouter,
        prompt: str,
        *,
        task: str | None = "erd",
        thread: str | None = None,
        force_local: bool | None = None,
        latency_budget_s: float | None = None,
    ) -> ModelResponse:
        response = None
        async for item in router.stream(
            prompt,
            task_type=task,
            thread_id=thread,
            force_local=force_local,
            latency_budget_s=latency_budget_s,
        ):
            if isinstance(item, ModelResponse):
                response = item
            else:
                self.events.append(item)
        assert response is not None
        return response

    def statuses(self) -> list[str]:
        return [e["message"] for e in self.events if e["kind"] == "status"]

    def usage_rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.data_dir / "usage.db") as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]
        conn.close()
        return rows

    def checkpoint_count(self, thread_id: str) -> int:
        with sqlite3.connect(self.data_dir / "checkpoints.db") as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        conn.close()
        return int(count)


@pytest.fixture
def rig(ollama: OllamaEmulator, cloud: OpenAIEmulator, tmp_path: Path) -> Rig:
    return Rig(ollama, cloud, tmp_path / "data")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL on loopback for the session; missing server programs fail, never skip."""
    try:
        with running_postgres() as server:
            yield server
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh database of the session's PostgreSQL: its MODELYARD_DATABASE_URL."""
    return postgres.database()


@contextlib.asynccontextmanager
async def locked_briefly(path: Path, seconds: float) -> AsyncIterator[list[float]]:
    """Another process's writer holding the SQLite file `path` for `seconds`.

    Yields the gaps between the ticks of a 10 ms ticker on the event loop, filled in while the
    block runs: a statement that waited for the lock on the loop shows as one gap that long.
    """
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(seconds, holder.execute, ["ROLLBACK"])
    gaps: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticks = asyncio.create_task(ticker())
    release.start()
    try:
        yield gaps
    finally:
        ticks.cancel()
        release.join()
        holder.close()
