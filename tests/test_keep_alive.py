"""keep_alive per task type, honoured on every call, and `modelyard unload` (issue 11, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import ConfigError, load_config
from tests.conftest import Rig, free_port
from tests.emulators.ollama import OllamaEmulator

ROOT = Path(__file__).parent.parent
MERMAID = "mermaid-mistral:latest"  # as Ollama spells it in /api/ps
CODELLAMA = "codellama:13b-instruct-q4_K_M"


def test_a_bad_per_task_keep_alive_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "routing: {default_task: x, tasks: {x: {model: m, validator: mermaid, keep_alive: forever}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value) and "routing.tasks.x.keep_alive" in str(caught.value)


def test_a_task_without_its_own_keep_alive_uses_the_global_one() -> None:
    config = load_config(env={})
    assert config.keep_alive_for("erd") == config.ollama.keep_alive
    assert config.keep_alive_for(None) == config.ollama.keep_alive


async def test_each_task_keeps_its_model_as_long_as_it_says_on_load_and_on_every_reply(rig: Rig) -> None:
    base = rig.config(keep_alive="30m")
    tasks = dict(base.routing.tasks)
    tasks["erd"] = tasks["erd"].model_copy(update={"keep_alive": "5m"})
    config = base.model_copy(update={"routing": base.routing.model_copy(update={"tasks": tasks})})

    erd = await rig.ask(config, "ERD for a blog", task="erd")
    page = await rig.ask(config, "landing page for a bakery", task="html")
    assert erd.ok and page.ok
    sent = {
        (r.path, r.body["model"], bool(r.body.get("messages"))): r.body["keep_alive"]
        for r in rig.ollama.requests
        if r.path in ("/api/generate", "/api/chat")
    }
    assert sent[("/api/generate", MERMAID, False)] == "5m"  # the load
    assert sent[("/api/chat", MERMAID, True)] == "5m"  # the reply resets the expiry: it says 5m too
    assert sent[("/api/chat", CODELLAMA, True)] == "30m"
    # Ollama's own view: the ERD model expires about 5 minutes from now, codellama about 30.
    expiry = {str(m["name"]): str(m["expires_at"]) for m in rig.ollama.ps_json()}
    now = datetime.now(UTC)
    left = {name: (datetime.fromisoformat(at) - now).total_seconds() for name, at in expiry.items()}
    assert 240 < left[MERMAID] <= 300 and 1700 < left[CODELLAMA] <= 1800


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.fixture
def cli_env(tmp_path: Path, ollama: OllamaEmulator) -> dict[str, str]:
    return {**os.environ, "OLLAMA_HOST": ollama.url, "MODELYARD_DATA_DIR": str(tmp_path / "data")}


def test_unload_frees_a_model_by_name_or_task_and_all_of_them(
    cli_env: dict[str, str], ollama: OllamaEmulator
) -> None:
    assert run(cli_env, "ask", "--task", "erd", "-q", "ERD for a blog").returncode == 0
    assert run(cli_env, "ask", "--task", "html", "-q", "landing page for a bakery").returncode == 0
    assert set(ollama.loaded_models()) == {MERMAID, CODELLAMA}

    by_task = run(cli_env, "unload", "erd")
    assert by_task.returncode == 0, by_task.stderr
    assert by_task.stdout.strip() == f"Unloaded {MERMAID}"
    assert ollama.loaded_models() == [CODELLAMA]

    every = run(cli_env, "unload", "--all")
    assert (every.returncode, every.stdout.strip()) == (0, f"Unloaded {CODELLAMA}")
    assert ollama.loaded_models() == []
    assert run(cli_env, "unload", "--all").stdout.strip() == "No model is loaded."


def test_unload_says_what_is_wrong(cli_env: dict[str, str]) -> None:
    neither = run(cli_env, "unload")
    assert neither.returncode == 2 and "name the models to unload, or pass --all" in neither.stderr
    down = run(cli_env | {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, "unload", "--all")
    assert down.returncode == 1 and down.stderr.startswith("modelyard: Ollama at http://127.0.0.1:")
    assert "Traceback" not in down.stderr
