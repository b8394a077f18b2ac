"""Quality feedback: pass, repair and fallback rates per local model and task type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_config
from config.schema import QualityConfig
from tests.conftest import Rig
from ui import cli
from ui.answer import usage_markdown
from usage.quality import QualityWarning
from usage.row import LocalOutcome, UsageRow
from usage.store import DB_FILENAME, UsageStore

MISTRAL = "mermaid-mistral"
CODER = "qwen2.5-coder:7b"


def make_row(**overrides: Any) -> UsageRow:
    base: dict[str, Any] = {
        "thread_id": "t-1",
        "task_type": "mermaid",
        "model": MISTRAL,
        "provider": "ollama",
        "location": "local",
        "status": "success",
        "fallback_reason": None,
        "local_model": MISTRAL,
        "load_time_s": 0.5,
        "first_token_s": 0.8,
        "generation_time_s": 2.0,
        "input_tokens": 100,
        "output_tokens": 50,
        "validation": "valid",
        "validation_error": None,
        "attempts": 1,
        "error_message": None,
    }
    return UsageRow(**{**base, **overrides})


async def request(
    store: UsageStore,
    outcome: LocalOutcome | None,
    *,
    task: str = "mermaid",
    model: str | None = MISTRAL,
    cloud_attempts: int = 0,
    finished: bool = True,
) -> None:
    """One request as the graph writes it: a row opened at its start, completed at its end."""
    start = UsageRow.unmeasured("t", task, model or "", "interrupted")
    row_id = await store.record(start)
    if finished:
        status = "success" if outcome in ("valid", "repaired") or cloud_attempts else "invalid"
        await store.finish(
            row_id,
            make_row(
                task_type=task,
                local_model=model,
                local_outcome=outcome,
                cloud_attempts=cloud_attempts,
                status=status,
                location="cloud" if cloud_attempts else "local",
                cloud_model="gpt-4o-mini" if cloud_attempts else None,
                cloud_provider="openai" if cloud_attempts else None,
            ),
        )


def times(outcome: LocalOutcome, n: int) -> list[LocalOutcome]:
    return [outcome] * n


async def outcomes(store: UsageStore, *values: LocalOutcome, task: str = "mermaid") -> None:
    for value in values:
        await request(store, value, task=task)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UsageStore]:
    with UsageStore(tmp_path / "data" / DB_FILENAME) as opened:
        yield opened


async def test_rates_for_a_hand_computed_mix(store: UsageStore) -> None:
    await outcomes(store, "valid", "valid", "valid", "repaired", "repaired", "unchecked")
    await request(store, "invalid", cloud_attempts=1)
    await request(store, "invalid", cloud_attempts=1)
    await request(store, "failed", cloud_attempts=2)  # two cloud calls: still one fallback
    await request(store, None, cloud_attempts=1)  # local model never called: not judged
    await request(store, "invalid", finished=False)  # still running (or died): not counted at all
    await request(store, "valid", task="erd")
    await request(store, None, model=None, cloud_attempts=1)  # no local model: nobody's pair
    await request(store, "valid", task="code", model=CODER)

    mermaid, *others = store.quality()
    assert [(s.model, s.task_type, s.overall.requests) for s in others] == [
        (MISTRAL, "erd", 1),
        (CODER, "code", 1),
    ]
    assert (mermaid.model, mermaid.task_type, mermaid.window) == (MISTRAL, "mermaid", 20)
    overall = mermaid.overall
    # 10 finished requests; 7 judged by a validator (not the failed, unchecked or unreached ones), 5 passed.
    assert (overall.requests, overall.judged, overall.passed) == (10, 7, 5)
    assert overall.pass_rate == pytest.approx(5 / 7)
    assert (overall.repaired, overall.fallbacks) == (2, 4)
    assert overall.repair_rate == pytest.approx(0.2)
    assert overall.fallback_rate == pytest.approx(0.4)
    # The window holds judged requests only: 7 < 20, so it is everything judged.
    recent = mermaid.recent
    assert (recent.requests, recent.judged, recent.passed, recent.repaired, recent.fallbacks) == (
        7,
        7,
        5,
        2,
        2,
    )
    assert recent.fallback_rate == pytest.approx(2 / 7)
    assert mermaid.to_dict()["overall"] == overall.to_dict()
    assert overall.to_dict()["pass_rate"] == pytest.approx(5 / 7)


async def test_only_the_last_window_counts(store: UsageStore) -> None:
    config = QualityConfig(window=5, min_requests=3, min_pass_rate=0.7)
    await outcomes(store, *times("invalid", 10))
    await outcomes(store, *times("valid", 5))
    await request(store, None, cloud_attempts=1)  # unjudged rows take no place in the window
    assert store.low_quality(MISTRAL, "mermaid", config) is None  # the 10 old failures are outside
    (stats,) = store.quality(window=5)
    assert (stats.overall.judged, stats.overall.passed) == (15, 5)
    assert (stats.recent.requests, stats.recent.pass_rate) == (5, 1.0)
    assert stats.warning(config) is None

    await outcomes(store, "failed", "unchecked")  # no judged reply: the window does not move
    assert store.low_quality(MISTRAL, "mermaid", config) is None
    await outcomes(store, "invalid", "invalid")
    warning = store.low_quality(MISTRAL, "mermaid", config)
    assert warning is not None
    assert (warning.passed, warning.requests, warning.window) == (3, 5, 5)
    assert warning.pass_rate == pytest.approx(0.6)
    (stats,) = store.quality(window=5)
    assert stats.warning(config) == warning  # the table and the request path agree
    with pytest.raises(ValueError, match="last 5"):
        stats.warning(QualityConfig())


async def test_no_warning_under_min_requests(store: UsageStore) -> None:
    config = QualityConfig(min_requests=5)
    assert store.low_quality(MISTRAL, "mermaid", config) is None  # no rows at all
    await outcomes(store, *times("invalid", 4))
    assert store.low_quality(MISTRAL, "mermaid", config) is None
    await outcomes(store, "invalid")
    assert store.low_quality(MISTRAL, "mermaid", config) is not None
    assert store.low_quality(MISTRAL, "erd", config) is None  # per task type
    assert store.low_quality(CODER, "mermaid", config) is None  # per model


async def test_warning_text(store: UsageStore) -> None:
    await outcomes(store, *times("invalid", 30))  # older than the last 20
    await outcomes(store, *times("valid", 9), *times("invalid", 11))
    warning = store.low_quality(MISTRAL, "mermaid", QualityConfig())
    assert warning == QualityWarning(MISTRAL, "mermaid", 0.45, 9, 20, 20, 0.7)
    assert warning.message == (
        "mermaid-mistral passed validation on 9 of the last 20 mermaid requests (45%, under 70%)"
    )
    # Rounded down, so a rate just under the threshold never reads as equal to it.
    close = QualityWarning(MISTRAL, "erd", 0.6999, 6999, 10000, 10000, 0.7)
    assert close.message.endswith("(69%, under 70%)")
    assert QualityWarning(CODER, "code", 0.5, 1, 2, 20, 0.725).message.endswith("(50%, under 72.5%)")


async def test_interrupted_rows_are_excluded(store: UsageStore) -> None:
    for _ in range(6):  # a died request's row keeps whatever it had when it started
        await store.record(make_row(status="interrupted", local_outcome="invalid"))
    assert store.quality() == []
    assert store.low_quality(MISTRAL, "mermaid", QualityConfig(min_requests=1)) is None
    await outcomes(store, "valid")
    (stats,) = store.quality()
    assert (stats.overall.requests, stats.recent.requests, stats.overall.pass_rate) == (1, 1, 1.0)


def test_window_must_be_positive(store: UsageStore) -> None:
    with pytest.raises(ValueError, match="window"):
        store.quality(window=0)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    return tmp_path / "data"


async def seed(data_dir: Path) -> None:
    with UsageStore.in_data_dir(data_dir) as store:
        await outcomes(store, *times("valid", 9), *times("invalid", 11))
        await outcomes(store, "valid", "repaired", task="erd")
        await request(store, "invalid", task="erd", cloud_attempts=1)


async def test_stats_command_adds_the_quality_table(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(data_dir)
    assert cli.main(["--data-dir", str(data_dir), "stats"]) == 0
    out = capsys.readouterr().out
    per_model, quality = out.split("\nQuality by model and task type\n")
    assert MISTRAL in per_model and "gpt" not in quality
    lines = quality.splitlines()
    assert lines[0].split() == [
        *("model", "task", "requests", "pass", "rate", "repair", "rate", "fallback", "rate"),
        *("last", "20", "pass", "rate"),
    ]
    assert lines[2].split() == [MISTRAL, "mermaid", "20", "45%", "0%", "0%", "45%", "!"]
    assert lines[3].split() == [MISTRAL, "erd", "3", "67%", "33%", "33%", "67%"]  # 3 < min_requests
    assert lines[-1] == (
        "! mermaid-mistral passed validation on 9 of the last 20 mermaid requests (45%, under 70%)"
    )


async def test_stats_json_keeps_its_list_and_quality_json_is_separate(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(data_dir)
    assert cli.main(["--data-dir", str(data_dir), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert isinstance(stats, list) and [s["model"] for s in stats] == [MISTRAL, "gpt-4o-mini"]
    assert all("task_type" not in s for s in stats)  # the per-model shape scripts parse, unchanged

    config = load_config(data_dir=str(data_dir))
    assert cli._stats(config, True, quality=True) == 0  # what `stats --quality --json` will print
    mermaid, erd = json.loads(capsys.readouterr().out)
    assert (mermaid["model"], mermaid["task_type"], mermaid["window"]) == (MISTRAL, "mermaid", 20)
    assert mermaid["recent"]["pass_rate"] == 0.45 and mermaid["overall"]["requests"] == 20
    assert mermaid["warning"].startswith("mermaid-mistral passed validation on 9 of the last 20")
    assert (erd["task_type"], erd["overall"]["fallback_rate"], erd["warning"]) == ("erd", 1 / 3, None)


async def test_chat_dashboard_shows_the_quality_table(store: UsageStore) -> None:
    await outcomes(store, *times("valid", 2), *times("invalid", 3))
    await request(store, "valid", task="code", model="a|b")
    stats, quality = store.dashboard(), store.quality()
    before = usage_markdown(stats)
    assert "Quality" not in before  # without quality rows: the dashboard as it was
    text = usage_markdown(stats, quality, QualityConfig())
    assert text.startswith(before)
    assert "| model | task | requests | pass rate | repair rate | fallback rate | last 20 pass rate |" in text
    assert "| mermaid-mistral | mermaid | 5 | 40% | 0% | 0% | 40% **!** |" in text
    assert "| a\\|b | code | 1 | 100% | 0% | 0% | 100% |" in text
    assert "::: warning\nmermaid\\-mistral passed validation on 2 of the last 5 mermaid requests" in text


async def test_a_low_pass_rate_is_warned_in_the_status_stream_and_in_models(rig: Rig) -> None:
    from graph.overview import models_overview
    from services import Services

    rig.ollama.update_model(MISTRAL, reply="```mermaid\nerDiagram\n  A ||--o{\n```")  # never parses
    base = rig.config(with_cloud=False)
    quality = QualityConfig(window=3, min_requests=2, min_pass_rate=0.5)
    config = base.model_copy(update={"routing": base.routing.model_copy(update={"quality": quality})})
    first = await rig.ask(config, "ERD for a blog")
    assert not first.ok and not any("passed validation" in s for s in rig.statuses())  # 1 < min_requests
    await rig.ask(config, "ERD for a shop")
    message = "mermaid-mistral passed validation on 0 of the last 2 erd requests (0%, under 50%)"
    assert message in rig.statuses()
    assert rig.statuses()[-1] != message  # the final line stays last
    services = Services.create(config)
    try:
        row = next(r for r in (await models_overview(services)).rows if r.model == MISTRAL)
    finally:
        await services.aclose()
    assert row.quality_warnings == [message]
