"""Routing that knows what is loaded (issue 11, item 6): each latency-budget outcome.

The unit tests pin the order of preference; the graph tests run each outcome against the
emulator, with load times measured "here" written to the usage table as real requests leave them.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from config.schema import AppConfig
from graph.router import ModelRouter
from graph.storage import flat
from lifecycle.choice import Candidate, choose
from services import Services
from tests.conftest import Rig
from tests.emulators._ollama_defaults import MERMAID_REPLY
from ui.cli import _seconds
from usage.row import UsageRow

MERMAID = "mermaid-mistral"
LLAMA3 = "llama3:8b-instruct-q4_K_M"


def cand(
    model: str,
    *,
    alternate: bool = False,
    warm: bool = False,
    cooling: bool = False,
    load_s: float | None = None,
) -> Candidate:
    return Candidate(model, alternate, warm, cooling, load_s)


@pytest.mark.parametrize(
    ("primary", "alternates", "budget", "cloud", "expected"),
    [
        (cand("m", warm=True), [cand("a", alternate=True, warm=True)], 5.0, True, ("m", "warm")),
        (cand("m", load_s=12.0), [cand("a", alternate=True, warm=True)], 20.0, True, ("m", "cold")),
        (cand("m", load_s=45.0), [cand("a", alternate=True, warm=True)], 20.0, True, ("a", "alternate_warm")),
        (
            cand("m"),
            [cand("a", alternate=True, load_s=30.0), cand("b", alternate=True, load_s=8.0)],
            20.0,
            True,
            ("b", "alternate_cold"),
        ),
        (cand("m", load_s=45.0), [cand("a", alternate=True, load_s=30.0)], 20.0, True, (None, "cloud")),
        (cand("m", load_s=45.0), [cand("a", alternate=True, load_s=30.0)], 20.0, False, ("a", "over_budget")),
        (cand("m", load_s=45.0), [], None, True, ("m", "cold")),  # no budget: today's behaviour
        (
            cand("m", cooling=True),
            [cand("a", alternate=True, load_s=90.0)],
            None,
            True,
            ("a", "alternate_cold"),
        ),
        (
            cand("m", warm=True, cooling=True),
            [cand("a", alternate=True, warm=True, cooling=True)],
            5.0,
            True,
            ("m", "cold"),  # all cooling down: ensure_model skips it, naming the cool-down
        ),
    ],
)
def test_the_order_of_preference(
    primary: Candidate,
    alternates: list[Candidate],
    budget: float | None,
    cloud: bool,
    expected: tuple[str | None, str],
) -> None:
    choice = choose([primary, *alternates], budget, cloud)
    assert (choice.model, choice.option) == expected, choice.reason


def test_the_reason_says_why_the_task_model_was_passed_over() -> None:
    choice = choose(
        [cand("mermaid-mistral", load_s=45.0), cand("llama3", alternate=True, warm=True)], 20.0, True
    )
    assert choice.reason == (
        "mermaid-mistral is cold (~45 s to load here) over the 20 s budget; llama3 (alternate) is warm"
    )
    never = choose([cand("mermaid-mistral")], 20.0, True)
    assert never.reason == (
        "mermaid-mistral is cold, with no measured load time here over the 20 s budget; "
        "no local model fits: the cloud"
    )


def test_within_takes_seconds_minutes_and_refuses_nonsense() -> None:
    assert (_seconds("20"), _seconds("20s"), _seconds("1.5m")) == (20.0, 20.0, 90.0)
    for bad in ("soon", "0", "-5s"):
        with pytest.raises(argparse.ArgumentTypeError):
            _seconds(bad)


def _config(rig: Rig, *, budget: float | None = None, **ollama: Any) -> AppConfig:
    base = rig.config(**ollama)
    tasks = dict(base.routing.tasks)
    tasks["erd"] = tasks["erd"].model_copy(update={"alternates": (LLAMA3,), "latency_budget_s": budget})
    return base.model_copy(update={"routing": base.routing.model_copy(update={"tasks": tasks})})


def _measured(config: AppConfig, model: str, load_s: float) -> None:
    """A request that loaded `model` in `load_s` seconds on this machine."""
    with Services.create(config).usage as store:
        row = UsageRow.unmeasured("t", "erd", model, "success")
        store.record_sync(UsageRow(**{**row.to_dict(), "local_model": model, "load_time_s": load_s}))


async def _ask(rig: Rig, config: AppConfig, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    async with ModelRouter(config) as router:
        response = await rig.ask_with(router, "ERD for a blog", thread="t-choice", task="erd", **kwargs)
        state = await router.graph.aget_state({"configurable": {"thread_id": "t-choice"}})
    return response, dict(flat(state.values))


@pytest.fixture
def rig_alt(rig: Rig) -> Rig:
    rig.ollama.update_model(LLAMA3, reply=MERMAID_REPLY)  # the alternate draws ERDs too
    return rig


async def test_the_task_model_warm_is_used(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=5.0)
    await rig_alt.ask(_config(rig_alt), "ERD for a shop")  # no budget: loads it, never measured before
    response, state = await _ask(rig_alt, config)
    assert response.model_used == MERMAID and state["route_choice"]["option"] == "warm"
    assert f"Route: {MERMAID} is warm" in rig_alt.statuses()


async def test_the_task_model_cold_is_loaded_when_its_measured_load_fits(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=20.0)
    _measured(config, MERMAID, 12.0)
    response, state = await _ask(rig_alt, config)
    assert response.model_used == MERMAID and not response.is_fallback
    assert state["route_choice"] == {
        "model": MERMAID,
        "option": "cold",
        "reason": f"{MERMAID} is cold (~12 s to load here), within the 20 s budget",
        "budget_s": 20.0,
    }


async def test_a_warm_alternate_beats_a_slow_cold_task_model(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=20.0)
    _measured(config, MERMAID, 45.0)
    await rig_alt.ask(config, "JIRA tickets for a login page", task="jira")  # llama3 is now warm
    response, state = await _ask(rig_alt, config)
    assert response.ok and response.model_used == LLAMA3 and not response.is_fallback
    assert state["route_choice"]["option"] == "alternate_warm" and state["model"] == LLAMA3
    assert rig_alt.ollama.load_count(MERMAID) == 0
    assert rig_alt.usage_rows()[-1]["local_model"] == LLAMA3


async def test_a_cold_alternate_that_loads_in_time(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=20.0)
    _measured(config, MERMAID, 45.0)
    _measured(config, LLAMA3, 6.0)
    response, state = await _ask(rig_alt, config)
    assert response.model_used == LLAMA3 and state["route_choice"]["option"] == "alternate_cold"
    assert rig_alt.ollama.load_count(LLAMA3) == 1


async def test_the_cloud_when_nothing_local_fits(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=20.0)
    _measured(config, MERMAID, 45.0)
    _measured(config, LLAMA3, 30.0)
    response, state = await _ask(rig_alt, config)
    assert response.is_fallback and response.fallback_reason == "timeout"
    assert state["route_choice"]["option"] == "cloud" and state["route_choice"]["model"] is None
    assert rig_alt.ollama.load_count(MERMAID) == rig_alt.ollama.load_count(LLAMA3) == 0
    assert rig_alt.usage_rows()[-1]["status"] == "success"


async def test_local_only_uses_the_fastest_local_option_over_the_budget(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=20.0)
    _measured(config, MERMAID, 45.0)
    _measured(config, LLAMA3, 30.0)
    response, state = await _ask(rig_alt, config, force_local=True)
    assert response.ok and response.model_used == LLAMA3 and not response.is_fallback
    assert state["route_choice"]["option"] == "over_budget"
    assert any(
        s.endswith("over the 20 s budget; local only, so it is used anyway") for s in rig_alt.statuses()
    )


async def test_the_request_budget_overrides_the_tasks(rig_alt: Rig) -> None:
    config = _config(rig_alt, budget=None)
    _measured(config, MERMAID, 45.0)
    response, state = await _ask(rig_alt, config, latency_budget_s=100.0)
    assert response.model_used == MERMAID and state["route_choice"]["option"] == "cold"
    assert state["latency_budget_s"] is None  # a request's budget does not stick to the thread
