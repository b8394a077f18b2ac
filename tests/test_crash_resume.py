"""A `modelyard ask` killed mid-request (SIGKILL) and a new process continuing its thread.

Both emulators run out of process, as real servers do; the CLI runs as the user runs it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from config import load_config
from graph.builder import compile_graph
from graph.checkpoint import close_checkpointer, open_checkpointer
from graph.storage import flat
from tests.conftest import MERMAID, OPENAI_KEY, free_port
from tests.emulators._ollama_defaults import MERMAID_REPLY

ROOT = Path(__file__).resolve().parent.parent
SLOW = 0.25  # seconds between tokens: a reply takes several seconds, long enough to kill mid-way


@contextmanager
def emulator(module: str, config: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    path = tmp_path / f"{module.rsplit('.', 1)[-1]}.json"
    path.write_text(json.dumps(config))
    with subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", "--config", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def kill_when(env: dict[str, str], marker: str, *args: str) -> str:
    """Start `modelyard ask`, SIGKILL it once `marker` is on stderr and a few tokens later; its stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "ui.cli", *args], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        seen = _wait_for(proc.stderr, marker, deadline=time.monotonic() + 30)
        time.sleep(3 * SLOW)  # mid-reply: tokens are streaming
        assert proc.poll() is None, f"finished before it could be killed:\n{seen}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return seen


def _wait_for(stream: IO[str], marker: str, deadline: float) -> str:
    seen = ""
    while marker not in seen:
        line = stream.readline()
        assert line and time.monotonic() < deadline, f"never saw {marker!r}:\n{seen}"
        seen += line
    return seen


def usage(data: Path) -> list[tuple[str, str, str | None]]:
    with closing(sqlite3.connect(data / "usage.db")) as conn:
        return conn.execute("SELECT thread_id, status, local_outcome FROM requests ORDER BY id").fetchall()


def integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def thread_values(data: Path, thread: str) -> dict[str, Any]:
    saver = await open_checkpointer(data)
    try:
        snapshot = await compile_graph(saver).aget_state({"configurable": {"thread_id": thread}})
    finally:
        await close_checkpointer(saver)
    return dict(flat(snapshot.values))


def base_env(data: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OPENAI_BASE_URL"}
    return clean | {"MODELYARD_DATA_DIR": str(data)}


async def test_killed_during_local_generation_then_the_thread_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    spec = {"reply": MERMAID_REPLY, "token_delay": SLOW}
    with emulator("tests.emulators.ollama", {"models": {MERMAID: spec}}, tmp_path) as url:
        env = base_env(data) | {"OLLAMA_HOST": url}

        def pace(delay: float) -> None:
            body = {"name": MERMAID, "merge": True, "token_delay": delay}
            httpx.post(f"{url}/_emulator/models", json=body).raise_for_status()

        pace(0.0)
        first = cli(env, "ask", "--thread", "blog", "--task", "erd", "ERD for a blog")
        assert first.returncode == 0, first.stderr
        pace(SLOW)
        kill_when(env, "Generating with", "ask", "--thread", "blog", "now add a TAGS table")
        assert usage(data) == [("blog", "success", "valid"), ("blog", "interrupted", None)]
        pace(0.0)
        resumed = cli(env, "ask", "--thread", "blog", "now add a TAGS table")
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing the thread's erd request" in resumed.stderr  # the first turn's checkpoint
    assert resumed.stdout.startswith("erDiagram")
    assert usage(data) == [
        ("blog", "success", "valid"),
        ("blog", "interrupted", None),
        ("blog", "success", "valid"),
    ]
    assert integrity(data / "checkpoints.db") == "ok" and integrity(data / "usage.db") == "ok"
    values = await thread_values(data, "blog")
    assert values["prompt"] == "now add a TAGS table" and values["response"]["valid"]
    assert values["last_artifact"].startswith("erDiagram")


async def test_killed_during_the_cloud_call_then_the_thread_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with emulator("tests.emulators.openai_compat", {"token_delay": SLOW}, tmp_path) as url:
        env = base_env(data) | {
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",  # Ollama is down
            "OPENAI_BASE_URL": url,
            "OPENAI_API_KEY": OPENAI_KEY,
        }
        seen = kill_when(
            env, "falling back to OpenAI", "ask", "--thread", "shop", "--task", "erd", "ERD for a shop"
        )
        assert "server_down" in seen
        assert usage(data) == [("shop", "interrupted", None)]
        httpx.post(
            f"{url.removesuffix('/v1')}/_emulator/config", json={"token_delay": 0.0}
        ).raise_for_status()
        resumed = cli(env, "ask", "--thread", "shop", "--task", "erd", "ERD for a shop")
    assert resumed.returncode == 0, resumed.stderr
    assert "Used gpt-4o-mini (cloud) instead." in resumed.stderr
    assert usage(data) == [("shop", "interrupted", None), ("shop", "success", "failed")]
    assert integrity(data / "checkpoints.db") == "ok"
    values = await thread_values(data, "shop")
    assert values["response"]["is_fallback"] and values["fallback_reason"] == "server_down"
    for path in data.glob("*.db*"):
        assert OPENAI_KEY.encode() not in path.read_bytes(), path
    assert load_config(env={**env}).data_dir == data
