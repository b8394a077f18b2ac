"""The `modelyard` command, run as a user runs it: a subprocess against the emulators."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import MERMAID, OPENAI_KEY, free_port
from tests.conftest import run_cli as run
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator


@pytest.fixture
def env(tmp_path: Path, ollama: OllamaEmulator) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OPENAI_BASE_URL"}
    return clean | {"OLLAMA_HOST": ollama.url, "MODELYARD_DATA_DIR": str(tmp_path / "data")}


def test_ask_prints_the_artifact_and_names_the_local_model(env: dict[str, str]) -> None:
    result = run(env, "ask", "--task", "mermaid", "ERD for a blog")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("erDiagram")
    assert f"Generated using {MERMAID} (local)" in result.stderr
    assert "[ensure_model] Loading mermaid-mistral" in result.stderr


def test_fallback_then_local_only_then_stats(env: dict[str, str], cloud: OpenAIEmulator) -> None:
    down = env | {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    with_cloud = down | {"OPENAI_BASE_URL": cloud.url, "OPENAI_API_KEY": OPENAI_KEY}
    fell_back = run(with_cloud, "ask", "--task", "mermaid", "ERD for a blog")
    assert fell_back.returncode == 0, fell_back.stderr
    assert "Local model failed (server_down" in fell_back.stderr
    assert "Used gpt-4o-mini (cloud) instead." in fell_back.stderr
    assert fell_back.stdout.startswith("erDiagram")

    local_only = run(with_cloud, "ask", "--task", "mermaid", "--local-only", "--json", "ERD for a blog")
    assert local_only.returncode == 3
    response = json.loads(local_only.stdout)
    assert response["fallback_reason"] == "server_down" and response["content"] == ""
    assert "no cloud model was tried" in response["error_message"]

    ok = run(env, "ask", "--task", "mermaid", "ERD for a blog")
    assert ok.returncode == 0
    stats = {s["model"]: s for s in json.loads(run(env, "stats", "--json").stdout)}
    # The local model is credited with every request that tried it, the cloud with the one it answered.
    assert stats[MERMAID]["total"] == 3 and stats[MERMAID]["successes"] == 1
    assert stats[MERMAID]["fallbacks"] == 1  # only the request the cloud answered; force local is not one
    assert stats["gpt-4o-mini"]["total"] == 1 and stats["gpt-4o-mini"]["fallbacks"] == 1
    table = run(env, "stats").stdout
    assert "gpt-4o-mini" in table and MERMAID in table


def test_thread_continues_the_conversation(env: dict[str, str], ollama: OllamaEmulator) -> None:
    assert run(env, "ask", "--thread", "blog", "--task", "erd", "ERD for a blog").returncode == 0
    second = run(env, "ask", "--thread", "blog", "now add a TAGS table")
    assert second.returncode == 0, second.stderr
    assert "continuing the thread's erd request" in second.stderr
    chat = [r for r in ollama.requests if r.path == "/api/chat"]
    assert "erDiagram" in chat[-1].body["messages"][-1]["content"]


def test_usage_and_config_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    unknown = run(env, "ask", "--task", "poem", "a sonnet")
    assert unknown.returncode == 2 and "unknown task type 'poem'" in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: {default_task: x, tasks: {x: {model: m, validator: nope}}}\n")
    broken = run(env | {"MODELYARD_CONFIG": str(bad)}, "ask", "hi")
    assert broken.returncode == 2
    assert str(bad) in broken.stderr and "routing.tasks.x.validator" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_models_lists_each_model_with_its_tasks_and_says_when_ollama_is_down(env: dict[str, str]) -> None:
    run(env, "ask", "--task", "mermaid", "ERD for a blog")
    listing = json.loads(run(env, "models", "--json").stdout)
    rows = {r["model"]: r for r in listing["models"]}
    mermaid = rows["mermaid-mistral"]
    assert {"mermaid", "erd"} <= set(mermaid["tasks"])
    assert mermaid["status"] == "ready" and mermaid["installed"] is True
    assert mermaid["expires_at"] is not None and mermaid["size"] > 0 and mermaid["size_vram"] > 0
    assert mermaid["cooldown_s"] == 0 and mermaid["load_s_median"] is None  # the load took < 0.5 s
    assert rows["llama3:8b-instruct-q4_K_M"]["status"] == "not_loaded"
    assert listing["resident"] == mermaid["size"] and listing["budget"] is None
    down = run(env | {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, "models")
    assert down.returncode == 1
    assert "Ollama is not reachable at http://127.0.0.1:" in down.stderr


def test_a_first_run_leaves_the_understanding_fit_cached(env: dict[str, str], tmp_path: Path) -> None:
    """A one-shot run on a fresh machine finishes and caches the fit, so later runs only load it."""
    cold = env | {"MODELYARD_CACHE_DIR": str(tmp_path / "cache")}
    first = run(cold, "ask", "--task", "mermaid", "ERD for a blog")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("erDiagram")  # the answer came first; the fit is waited for after
    (cached,) = (tmp_path / "cache").glob("understanding-*.npz")
    stamp = cached.stat().st_mtime_ns
    again = run(cold, "ask", "--task", "mermaid", "ERD for a shop")
    assert again.returncode == 0, again.stderr
    assert cached.stat().st_mtime_ns == stamp  # loaded, not fitted and written again
