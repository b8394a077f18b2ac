"""Checkpoints on a real PostgreSQL, and two app processes sharing one database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config import AppConfig
from graph.builder import compile_graph
from graph.checkpoint import close_checkpointer, open_checkpointer
from graph.storage import flat
from tests.conftest import MERMAID, OPENAI_KEY, Rig, free_port, run_cli
from tests.emulators.ollama import OllamaEmulator
from tests.postgres import PASSWORD, PostgresServer

ROOT = Path(__file__).resolve().parent.parent


def on_postgres(config: AppConfig, url: str) -> AppConfig:
    return config.model_copy(update={"database_url": url})


def dump(url: str) -> bytes:
    """Every row of every table, as bytes to scan for secrets."""
    with psycopg.connect(url) as conn:
        tables = [t for (t,) in conn.execute(b"SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = [conn.execute(f"SELECT * FROM {t}".encode()).fetchall() for t in tables]
    return repr(rows).encode()


async def thread_values(config: AppConfig, thread: str) -> dict[str, Any]:
    saver = await open_checkpointer(config.data_dir, database_url=config.database_url)
    try:
        snapshot = await compile_graph(saver).aget_state({"configurable": {"thread_id": thread}})
    finally:
        await close_checkpointer(saver)
    return dict(flat(snapshot.values))


async def test_a_thread_round_trips_through_postgres_checkpoints(rig: Rig, pg_url: str) -> None:
    config = on_postgres(rig.config(), pg_url)
    first = await rig.ask(config, "ERD for a blog", thread="blog")
    assert first.content.startswith("erDiagram")
    values = await thread_values(config, "blog")  # a new saver, as another process would open
    assert values["response"]["content"] == first.content
    assert values["task"] == "erd"
    # Nothing went to the data directory's SQLite files; no key or password reached a row.
    assert not (rig.data_dir / "checkpoints.db").exists() and not (rig.data_dir / "usage.db").exists()
    rows = dump(pg_url)
    assert OPENAI_KEY[:12].encode() not in rows and PASSWORD[:12].encode() not in rows


async def test_checkpoint_setup_from_concurrent_starts_is_safe(rig: Rig, pg_url: str) -> None:
    savers = await asyncio.gather(*(open_checkpointer(rig.data_dir, database_url=pg_url) for _ in range(4)))
    for saver in savers:
        await close_checkpointer(saver)
    with psycopg.connect(pg_url) as conn:
        versions = [v for (v,) in conn.execute(b"SELECT v FROM checkpoint_migrations ORDER BY v")]
    assert versions == sorted(set(versions)) and versions[0] == 0


# -- two app processes on one PostgreSQL --------------------------------------------------------


@pytest.fixture
def app_envs(tmp_path: Path, ollama: OllamaEmulator, pg_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Two app processes' environments: one database URL, each its own data directory (own machine)."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OPENAI_BASE_URL"}
    base = clean | {"OLLAMA_HOST": ollama.url, "MODELYARD_DATABASE_URL": pg_url}
    return base | {"MODELYARD_DATA_DIR": str(tmp_path / "a")}, base | {
        "MODELYARD_DATA_DIR": str(tmp_path / "b")
    }


def test_two_processes_share_threads_and_stats_and_lose_no_row(
    app_envs: tuple[dict[str, str], dict[str, str]], ollama: OllamaEmulator, pg_url: str
) -> None:
    a, b = app_envs
    first = run_cli(a, "ask", "--thread", "blog", "--task", "erd", "ERD for a blog")
    assert first.returncode == 0, first.stderr
    second = run_cli(b, "ask", "--thread", "blog", "now add a TAGS table")
    assert second.returncode == 0, second.stderr
    assert "continuing the thread's erd request" in second.stderr, second.stderr
    revision = [r for r in ollama.requests if r.path == "/api/chat"][-1]
    assert first.stdout.strip() in revision.body["messages"][-1]["content"]  # the first one's artifact

    # N requests in flight at once from each of two processes: every one leaves exactly one row.
    per_process = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_asks", str(per_process), name],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, env in (("a", a), ("b", b))
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert int(out.strip()) == per_process, err[-3000:]
    requests = 2 + 2 * per_process
    with psycopg.connect(pg_url) as conn:
        (rows,) = conn.execute(b"SELECT COUNT(*) FROM requests").fetchone() or (0,)
        (threads,) = conn.execute(b"SELECT COUNT(DISTINCT thread_id) FROM requests").fetchone() or (0,)
    assert (rows, threads) == (requests, 1 + 2 * per_process)
    stats_a, stats_b = (json.loads(run_cli(env, "stats", "--json").stdout) for env in (a, b))
    assert stats_a == stats_b  # one table, whichever process reads it
    assert {s["model"]: s["total"] for s in stats_a} == {MERMAID: requests}
    for env in (a, b):  # nothing in either data directory's SQLite files
        assert not (Path(env["MODELYARD_DATA_DIR"]) / "usage.db").exists()
        assert not (Path(env["MODELYARD_DATA_DIR"]) / "checkpoints.db").exists()


@pytest.mark.parametrize("problem", ["password", "unreachable", "scheme"])
def test_a_bad_url_stops_the_cli_with_one_clear_line(
    app_envs: tuple[dict[str, str], dict[str, str]], postgres: PostgresServer, problem: str
) -> None:
    port = free_port()
    url = {
        "password": postgres.url("postgres", password="wrong-password-0123456789"),
        "unreachable": postgres.url("postgres", port=port),
        "scheme": f"mysql://modelyard:{PASSWORD}@127.0.0.1:{port}/x",
    }[problem]
    result = run_cli(app_envs[0] | {"MODELYARD_DATABASE_URL": url}, "ask", "--task", "erd", "ERD for a blog")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("modelyard: MODELYARD_DATABASE_URL: ")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    for secret in ("wrong-password", PASSWORD[:10]):
        assert secret not in result.stderr
    where = {
        "password": f"127.0.0.1:{postgres.port}/",
        "unreachable": f"127.0.0.1:{port}/",
        "scheme": "postgresql://",
    }
    assert where[problem] in result.stderr
