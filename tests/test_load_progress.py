"""Load progress (issue 11, item 4): elapsed time against this model's own measured load time."""

from __future__ import annotations

from typing import Any

from nodes.events import StatusEvent
from services import Services
from tests.conftest import Rig
from ui.render import status_line
from usage.row import UsageRow

MERMAID = "mermaid-mistral"


def _measured_loads(rig: Rig, seconds: list[float]) -> None:
    with Services.create(rig.config()).usage as store:
        for load_s in seconds:
            row = UsageRow.unmeasured("t", "erd", MERMAID, "success")
            store.record_sync(
                row.__class__(**{**row.to_dict(), "local_model": MERMAID, "load_time_s": load_s})
            )


def _loading(rig: Rig) -> list[dict[str, Any]]:
    return [dict(e) for e in rig.events if e["kind"] == "status" and e.get("model_status") == "loading"]


async def test_a_load_is_shown_against_this_models_median_load_time_here(rig: Rig) -> None:
    _measured_loads(rig, [2.0, 2.4, 1.6, 0.1])  # 0.1 s: the model was resident, not a load
    rig.ollama.update_model(MERMAID, load_delay=1.3)
    assert (await rig.ask(rig.config(), "ERD for a blog")).ok
    first, *ticks = _loading(rig)
    assert first["message"] == f"Loading {MERMAID} (usually ~2 s here)..."
    assert first["expected_s"] == 2.0 and first["progress"] == 0.0
    assert ticks, "no progress line during a 1.3 s load"
    assert ticks[0]["message"] == f"Loading {MERMAID}... 1 s of ~2 s"
    assert ticks[0]["expected_s"] == 2.0 and 0.45 <= ticks[0]["progress"] <= 0.6


async def test_without_history_the_seeds_estimate_stands_in_and_no_bar_is_promised(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, load_delay=1.2)
    assert (await rig.ask(rig.config(), "ERD for a blog")).ok
    first, tick = _loading(rig)[:2]
    assert first["message"] == f"Loading {MERMAID} (first time ~30-60 s)..."
    assert "progress" not in first and tick["message"] == f"Loading {MERMAID}... 1 s"


async def test_a_pull_reports_bytes_and_percent(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, installed=False)
    assert (await rig.ask(rig.config(allow_pull=True), "ERD for a blog")).ok
    pulls = [
        e
        for e in rig.events
        if e["kind"] == "status" and e["message"].startswith(f"Pulling {MERMAID}: pulling ")
    ]
    assert any(e["message"].endswith("2.7 GB of 4.1 GB") and abs(e["progress"] - 2 / 3) < 0.01 for e in pulls)
    assert any(e["message"].endswith("4.1 GB of 4.1 GB") and e["progress"] == 1.0 for e in pulls)


def test_the_cli_draws_the_progress_as_a_bar() -> None:
    event = StatusEvent(kind="status", node="ensure_model", message="Loading m... 3 s of ~12 s", level="info")
    event["progress"] = 0.25
    assert status_line(event) == "· [ensure_model] Loading m... 3 s of ~12 s █████░░░░░░░░░░░░░░░ 25%"
