"""Warm-up (issue 11, item 2) and the models view (item 8): order, budget, `loading`, --json, --watch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from config.schema import AppConfig
from graph.overview import models_overview
from graph.warming import warm_models
from services import Services
from tests.conftest import Rig
from ui import cli
from usage.row import UsageRow

MERMAID = "mermaid-mistral:latest"
CODELLAMA = "codellama:13b-instruct-q4_K_M"
LLAMA3 = "llama3:8b-instruct-q4_K_M"


def _loads(rig: Rig) -> list[str]:
    """The models loaded (empty generates that keep them), in the order they were asked."""
    return [
        r.body["model"]
        for r in rig.ollama.requests
        if r.path == "/api/generate" and isinstance(r.body, dict) and r.body.get("keep_alive") != 0
    ]


def _used(config: AppConfig, model: str, times: int) -> None:
    with Services.create(config).usage as store:
        for _ in range(times):
            store.record_sync(UsageRow.unmeasured("t", "erd", model, "success"))


async def _warm(config: AppConfig, names: list[str]) -> list[str]:
    services = Services.create(config)
    try:
        return [f"{r.outcome} {r.model}" for r in await warm_models(services, names, lambda m, line: None)]
    finally:
        await services.aclose()


async def test_warm_up_loads_the_configured_list_most_used_first(rig: Rig) -> None:
    base = rig.config()
    config = base.model_copy(
        update={"ollama": base.ollama.model_copy(update={"warmup": ("jira", "html", "erd")})}
    )
    _used(config, "codellama:13b-instruct-q4_K_M", 5)  # html's model: the most used
    _used(config, "mermaid-mistral", 2)
    results = await _warm(config, [])
    assert results == [f"loaded {CODELLAMA}", f"loaded {MERMAID}", f"loaded {LLAMA3}"]
    assert _loads(rig) == [CODELLAMA, MERMAID, LLAMA3]


async def test_warm_up_stays_within_the_budget_and_never_unloads(rig: Rig) -> None:
    config = rig.config(vram_budget_gb=10.0)
    results = await _warm(config, ["erd", "jira", "html"])  # 4.1 + 4.9 fit; codellama's 7.9 does not
    assert results == [f"loaded {MERMAID}", f"loaded {LLAMA3}", f"skipped {CODELLAMA}"]
    assert sorted(rig.ollama.loaded_models()) == sorted([MERMAID, LLAMA3])
    assert not any(r.body.get("keep_alive") == 0 for r in rig.ollama.requests if isinstance(r.body, dict))


async def test_a_warm_up_shows_loading_to_every_other_process(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", load_delay=1.0)
    config = rig.config()
    warming = asyncio.create_task(_warm(config, ["erd"]))
    other = Services.create(config)  # what `modelyard models` in another process builds
    try:
        seen = set()
        while not warming.done():
            rows = {r.model: r for r in (await models_overview(other)).rows}
            seen.add(rows["mermaid-mistral"].status)
            await asyncio.sleep(0.1)
        after = {r.model: r for r in (await models_overview(other)).rows}
    finally:
        await other.aclose()
    assert await warming == [f"loaded {MERMAID}"]
    assert "loading" in seen and after["mermaid-mistral"].status == "ready"


def test_modelyard_warm_names_tasks_or_models_and_fails_for_a_missing_one(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_env(rig, monkeypatch)
    code = cli.main(["warm", "erd", "nope:7b"])
    out = capsys.readouterr()
    assert code == 1
    assert "loaded   mermaid-mistral ready (loaded in " in out.out
    assert "failed   nope:7b: not_installed" in out.out
    assert "· Loading mermaid-mistral (first time ~30-60 s)..." in out.err


def test_models_json_has_every_field_per_model(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_env(rig, monkeypatch)
    assert cli.main(["warm", "erd"]) == 0
    capsys.readouterr()
    assert cli.main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    row = next(r for r in listing["models"] if r["model"] == "mermaid-mistral")
    assert set(row) >= {
        "model",
        "tasks",
        "status",
        "size",
        "size_vram",
        "expires_at",
        "cooldown_s",
        "load_s_median",
    }
    assert row["status"] == "ready" and row["size_vram"] == row["size"] > 0 and row["cooldown_s"] == 0


def test_models_watch_refreshes_with_memory_against_the_budget(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file = tmp_path / "models.yaml"
    packaged = Path(cli.__file__).parent.parent / "config" / "models.yaml"
    config_file.write_text(
        packaged.read_text(encoding="utf-8").replace("vram_budget_gb: null", "vram_budget_gb: 13", 1),
        encoding="utf-8",
    )
    _cli_env(rig, monkeypatch)
    assert cli.main(["--config", str(config_file), "warm", "erd"]) == 0
    capsys.readouterr()
    code = cli.main(["--config", str(config_file), "models", "--watch", "--interval", "0.05", "--count", "2"])
    out = capsys.readouterr().out
    assert code == 0
    frames = out.split("\x1b[H\x1b[2J")[1:]
    assert len(frames) == 2
    for frame in frames:
        assert frame.startswith("modelyard models at ")
        assert "memory [#########.....................] 4.1 GB of 13.0 GB" in frame
        assert any(line.startswith("mermaid-mistral ") and " ready " in line for line in frame.splitlines())


def _cli_env(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", rig.ollama.url)
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(rig.data_dir))
    for name in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
