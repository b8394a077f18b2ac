"""Cool-downs (issue 11, item 5): a model that failed to load or timed out is skipped for a while.

The state is a file in the data directory, so the CLI, the app and Studio agree on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, load_config
from config.schema import CooldownConfig
from lifecycle.health import HealthBook
from providers.ollama import OllamaClient
from tests.conftest import Rig
from tests.emulators.ollama import NO_GPU_FIT

ROOT = Path(__file__).parent.parent
MERMAID = "mermaid-mistral:latest"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_cooldown_doubles_with_each_failure_up_to_its_cap(tmp_path: Path) -> None:
    clock = Clock()
    book = HealthBook(tmp_path, CooldownConfig(base_s=30, max_s=100), clock=clock)
    lengths = []
    for _ in range(4):
        cooldown = book.record_failure(MERMAID, "load_failed", "unable to load full model on GPU")
        assert cooldown is not None
        lengths.append(cooldown.until - clock.now)
    assert lengths == [30, 60, 100, 100]
    clock.now += 99
    assert book.cooling(MERMAID) is not None
    clock.now += 2
    assert book.cooling(MERMAID) is None  # over, though the failure count is kept for the next one
    assert book.cooldowns()[MERMAID].failures == 4


def test_only_load_failures_and_timeouts_cool_a_model_down(tmp_path: Path) -> None:
    book = HealthBook(tmp_path, CooldownConfig())
    for reason in ("server_down", "not_installed", "generation_error", "invalid_output"):
        assert book.record_failure(MERMAID, reason, "x") is None
    assert book.cooling(MERMAID) is None and not (tmp_path / "model_health.json").exists()


def test_a_success_ends_the_cooldown_and_resets_the_count(tmp_path: Path) -> None:
    book = HealthBook(tmp_path, CooldownConfig())
    book.record_failure(MERMAID, "timeout", "sent no token within 2 s")
    book.record_success(MERMAID)
    assert book.cooling(MERMAID) is None and MERMAID not in book.cooldowns()
    again = book.record_failure(MERMAID, "timeout", "sent no token within 2 s")
    assert again is not None and again.failures == 1


def test_another_process_sees_the_cooldown_and_a_key_never_reaches_the_file(tmp_path: Path) -> None:
    key = "sk-health-test-0123456789abcdef"
    HealthBook(tmp_path, CooldownConfig(), secrets=[key]).record_failure(
        MERMAID, "load_failed", f"proxy said: bad key {key}"
    )
    assert key not in (tmp_path / "model_health.json").read_text(encoding="utf-8")
    code = (
        "import sys; from pathlib import Path; from config.schema import CooldownConfig;"
        "from lifecycle.health import HealthBook;"
        "c = HealthBook(Path(sys.argv[1]), CooldownConfig()).cooling('mermaid-mistral:latest');"
        "print(c.reason, c.failures, round(c.left_s(__import__('time').time())))"
    )
    seen = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert seen.stdout.split()[:2] == ["load_failed", "1"] and 28 <= int(seen.stdout.split()[2]) <= 30


def test_a_bad_cooldown_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "ollama: {cooldown: {base_s: 60, max_s: 10}}\n"
        "routing: {default_task: x, tasks: {x: {model: m, validator: mermaid}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value) and "ollama.cooldown" in str(caught.value)
    assert "max_s (10) must be at least base_s (60)" in str(caught.value)


async def test_a_model_that_failed_to_load_is_skipped_without_asking_ollama_again(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", load_error=NO_GPU_FIT)
    config = rig.config()
    first = await rig.ask(config, "ERD for a blog")
    assert first.fallback_reason == "load_failed" and first.is_fallback
    loads = _load_requests(rig)
    rig.events.clear()
    second = await rig.ask(config, "ERD for a shop")
    assert second.fallback_reason == "load_failed" and second.is_fallback
    assert _load_requests(rig) == loads  # no second wait on the broken model
    skipped = [s for s in rig.statuses() if "skipped for" in s]
    assert len(skipped) == 1 and "cool-down after 1 failure: " in skipped[0]
    assert NO_GPU_FIT in skipped[0]
    row = rig.usage_rows()[-1]
    assert row["fallback_reason"] == "load_failed" and row["local_outcome"] == "failed"


async def test_ollama_showing_the_model_resident_ends_its_load_cooldown(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", load_error=NO_GPU_FIT)
    config = rig.config()
    assert (await rig.ask(config, "ERD for a blog")).is_fallback
    rig.ollama.update_model("mermaid-mistral", load_error=None)
    async with _Client(config) as client:  # someone else (ollama run, another app) loads it
        await client.load_model(MERMAID)
    again = await rig.ask(config, "ERD for a shop")
    assert again.ok and not again.is_fallback and again.model_used == "mermaid-mistral"
    assert HealthBook(rig.data_dir, config.ollama.cooldown).cooling(MERMAID) is None


async def test_a_model_that_timed_out_is_skipped_even_while_resident(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", first_token_delay=1.0)
    config = rig.config(first_token_timeout=0.3, max_retries=0)
    first = await rig.ask(config, "ERD for a blog")
    assert first.fallback_reason == "timeout"
    assert rig.ollama.loaded_models() == [MERMAID]
    chats = _chat_requests(rig)
    second = await rig.ask(config, "ERD for a shop")
    assert second.fallback_reason == "timeout" and second.is_fallback
    assert _chat_requests(rig) == chats  # resident, but not asked again during its cool-down
    cooling = HealthBook(rig.data_dir, config.ollama.cooldown).cooling(MERMAID)
    assert cooling is not None and cooling.reason == "timeout"


async def test_a_warm_up_is_the_probe_that_ends_a_cooldown_early(rig: Rig) -> None:
    from graph.warming import warm_models
    from services import Services

    rig.ollama.update_model("mermaid-mistral", load_error=NO_GPU_FIT)
    config = rig.config()
    assert (await rig.ask(config, "ERD for a blog")).is_fallback
    rig.ollama.update_model("mermaid-mistral", load_error=None)
    services = Services.create(config)
    try:
        [result] = await warm_models(services, ["erd"], lambda model, line: None)
    finally:
        await services.aclose()
    assert result.outcome == "loaded"
    assert HealthBook(rig.data_dir, config.ollama.cooldown).cooling(MERMAID) is None


def test_modelyard_models_shows_the_cooldown_with_the_time_left(rig: Rig) -> None:
    config = rig.config()
    HealthBook(rig.data_dir, config.ollama.cooldown).record_failure(MERMAID, "load_failed", NO_GPU_FIT)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env |= {"OLLAMA_HOST": rig.ollama.url, "MODELYARD_DATA_DIR": str(rig.data_dir)}
    shown = subprocess.run(
        [sys.executable, "-m", "ui.cli", "models"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    line = next(line for line in shown.stdout.splitlines() if line.startswith("mermaid-mistral "))
    assert " error " in line and "s (load_failed)" in line, shown.stdout


def _load_requests(rig: Rig) -> int:
    return sum(1 for r in rig.ollama.requests if r.path == "/api/generate")


def _chat_requests(rig: Rig) -> int:
    return sum(1 for r in rig.ollama.requests if r.path == "/api/chat")


class _Client:
    def __init__(self, config: object) -> None:
        from config.schema import AppConfig

        assert isinstance(config, AppConfig)
        self.client = OllamaClient(config.ollama)

    async def __aenter__(self) -> OllamaClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
