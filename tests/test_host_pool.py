"""A pool of Ollama hosts (issue 12): the request goes where its model is warm, else where it fits.

Three emulators on loopback act as hosts; a fourth "host" accepts connections and never answers
(tests/emulators/hanging.py), and a closed port stands for a box that is switched off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from config import AppConfig
from config.schema import OllamaConfig, OllamaHost
from graph.overview import models_overview
from graph.router import ModelRouter
from graph.storage import flat
from graph.warming import warm_models
from lifecycle.health import FRESH_S, HealthBook
from lifecycle.placement import place
from providers.ollama import OllamaClient
from providers.ollama_pool import OllamaPool
from services import Services
from tests.conftest import MERMAID, Rig, free_port
from tests.emulators._ollama_defaults import default_models
from tests.emulators.hanging import HangingHost
from tests.emulators.ollama import OllamaEmulator
from ui.answer import panel_props
from ui.render import overview_table

LLAMA = "llama3:8b-instruct-q4_K_M"
GB = 1_000_000_000
LIMITS = {"connect_timeout": 0.5, "inspect_timeout": 0.5}
BOUND_S = LIMITS["connect_timeout"] + LIMITS["inspect_timeout"]  # what a hanging host may cost


@pytest.fixture
def hosts() -> Iterator[dict[str, OllamaEmulator]]:
    """gpu-1 and gpu-2 have every model installed; gpu-3 has only llama3."""
    models = default_models()
    with (
        OllamaEmulator() as one,
        OllamaEmulator() as two,
        OllamaEmulator(models={LLAMA: models[LLAMA]}) as three,
    ):
        yield {"gpu-1": one, "gpu-2": two, "gpu-3": three}


@pytest.fixture
def hanging() -> Iterator[HangingHost]:
    with HangingHost() as host:
        yield host


def pool_config(rig: Rig, hosts: list[tuple[str, str]], **host_settings: dict[str, float]) -> AppConfig:
    """The rig's config with `ollama.hosts` = (name, url) pairs, each with its own settings."""
    config = rig.config(**LIMITS)
    entries = tuple(OllamaHost(url=url, name=name, **host_settings.get(name, {})) for name, url in hosts)
    return config.model_copy(update={"ollama": config.ollama.model_copy(update={"hosts": entries})})


def warm(emulator: OllamaEmulator, model: str) -> None:
    """Load `model` there with the context window our requests use (another one would reload it)."""
    options = {"num_ctx": OllamaClient(OllamaConfig()).load_num_ctx(model)}
    body = {"model": model, "keep_alive": "30m", "options": options}
    reply = httpx.post(f"{emulator.url}/api/generate", json=body, timeout=10)
    assert reply.status_code == 200, reply.text


def chats(emulator: OllamaEmulator) -> int:
    return sum(1 for r in emulator.requests if r.path == "/api/chat")


async def test_the_host_where_the_model_is_warm_serves_it_and_a_hanging_host_costs_one_bound(
    rig: Rig, hosts: dict[str, OllamaEmulator], hanging: HangingHost
) -> None:
    warm(hosts["gpu-2"], MERMAID)
    config = pool_config(
        rig, [("gpu-1", hosts["gpu-1"].url), ("stuck", hanging.url), ("gpu-2", hosts["gpu-2"].url)]
    )
    async with ModelRouter(config) as router:
        started = time.monotonic()
        response = await rig.ask_with(router, "ERD for a blog", thread="t-warm")
        first_s = time.monotonic() - started
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "t-warm"}})).values)

        assert response.ok and not response.is_fallback, response.error_message
        assert (chats(hosts["gpu-1"]), chats(hosts["gpu-2"])) == (0, 1)
        assert hosts["gpu-2"].load_count(MERMAID) == 1  # already loaded: no second load
        assert state["ollama_host"]["host"] == "gpu-2" and state["ollama_host"]["tier"] == "warm"
        line = next(s for s in rig.statuses() if s.startswith("Host: "))
        assert line.startswith("Host: mermaid-mistral is warm on gpu-2"), line
        assert "stuck (down" in line  # the hanging host was skipped, and the line says so
        accepted = hanging.accepted

        # It is down for its cool-down now: the next request does not even connect to it.
        rig.events.clear()
        started = time.monotonic()
        await rig.ask_with(router, "ERD for a zoo", thread="t-warm-2")
        second_s = time.monotonic() - started
        assert hanging.accepted == accepted
        assert any("stuck (down, skipped" in s for s in rig.statuses()), [
            s for s in rig.statuses() if "Host" in s
        ]

        # Its cool-down over, the hanging host costs the next request one inspection bound (connect +
        # inspect, every host asked at once) and no more.
        health = HealthBook(config.data_dir, config.ollama.cooldown)
        await asyncio.to_thread(health.record_host_success, hanging.url)
        await asyncio.sleep(FRESH_S + 0.1)  # the router's book trusts its last read this long
        started = time.monotonic()
        await rig.ask_with(router, "ERD for a farm", thread="t-warm-3")
        third_s = time.monotonic() - started
        print(
            f"first request {first_s:.2f} s, hanging host marked down {second_s:.2f} s, in again {third_s:.2f} s"
        )
        assert third_s - second_s < BOUND_S + 0.3, (second_s, third_s)
        assert hanging.accepted > accepted
    assert set(HealthBook(config.data_dir, config.ollama.cooldown).host_cooldowns()) == {hanging.url}


async def test_placement_waits_on_a_hanging_host_no_longer_than_the_inspection_bound(
    rig: Rig, hosts: dict[str, OllamaEmulator], hanging: HangingHost
) -> None:
    config = pool_config(rig, [("stuck", hanging.url), ("gpu-1", hosts["gpu-1"].url)])
    pool = OllamaPool(config.ollama)
    health = HealthBook(config.data_dir, config.ollama.cooldown)
    try:
        started = time.monotonic()
        placement = await place(pool, health, MERMAID, allow_pull=False)
        took = time.monotonic() - started
    finally:
        await pool.aclose()
    assert placement.host.name == "gpu-1" and placement.tier == "room"
    # The stuck host accepted the connection, so its read limit ended the wait: once, not per route.
    assert LIMITS["inspect_timeout"] - 0.05 < took < BOUND_S + 0.3, took


async def test_a_host_with_room_is_preferred_to_one_that_must_unload_first(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    # Both have mermaid installed and neither has it loaded; gpu-1's 6 GB budget is taken by llama3.
    warm(hosts["gpu-1"], LLAMA)
    config = pool_config(
        rig,
        [("gpu-1", hosts["gpu-1"].url), ("gpu-2", hosts["gpu-2"].url)],
        **{"gpu-1": {"vram_budget_gb": 6.0}, "gpu-2": {"vram_budget_gb": 6.0}},
    )
    async with ModelRouter(config) as router:
        response = await rig.ask_with(router, "ERD for a blog")
    assert response.ok, response.error_message
    assert (chats(hosts["gpu-1"]), chats(hosts["gpu-2"])) == (0, 1)
    assert LLAMA in hosts["gpu-1"].loaded_models()[0]  # nothing was unloaded on gpu-1
    assert any("installed on gpu-2, with room to load it" in s for s in rig.statuses())


async def test_installed_anywhere_beats_not_installed_and_the_load_happens_once(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    # Only gpu-1 has mermaid, and its budget is full: it still serves, after unloading llama3.
    warm(hosts["gpu-1"], LLAMA)
    config = pool_config(
        rig,
        [("gpu-3", hosts["gpu-3"].url), ("gpu-1", hosts["gpu-1"].url)],
        **{"gpu-1": {"vram_budget_gb": 6.0}},
    )
    async with ModelRouter(config) as router:
        responses = await asyncio.gather(
            *(rig.ask_with(router, f"ERD for shop {i}", thread=f"t-{i}") for i in range(3))
        )
    assert all(r.ok and not r.is_fallback for r in responses), [r.error_message for r in responses]
    assert chats(hosts["gpu-3"]) == 0 and chats(hosts["gpu-1"]) == 3
    assert hosts["gpu-1"].load_count(MERMAID) == 1  # single-flight per (host, model)
    assert any("installed on gpu-1 (no host has it loaded or room for it)" in s for s in rig.statuses())


async def test_requests_in_flight_spread_over_hosts_where_the_model_is_warm(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    for name in ("gpu-1", "gpu-2"):
        warm(hosts[name], MERMAID)
        hosts[name].update_model(MERMAID, first_token_delay=0.6)
    config = pool_config(rig, [("gpu-1", hosts["gpu-1"].url), ("gpu-2", hosts["gpu-2"].url)])
    async with ModelRouter(config) as router:
        first = asyncio.create_task(rig.ask_with(router, "ERD for a blog", thread="a"))
        await asyncio.sleep(0.3)  # the first is generating on one host
        second = await rig.ask_with(router, "ERD for a zoo", thread="b")
        assert (await first).ok and second.ok
    assert (chats(hosts["gpu-1"]), chats(hosts["gpu-2"])) == (1, 1)


async def test_no_host_has_the_model_or_none_answers(rig: Rig, hosts: dict[str, OllamaEmulator]) -> None:
    config = pool_config(rig, [("gpu-3", hosts["gpu-3"].url), ("off", f"http://127.0.0.1:{free_port()}")])
    async with ModelRouter(config) as router:
        response = await rig.ask_with(router, "ERD for a blog", force_local=True)
    assert response.fallback_reason == "not_installed"
    assert "mermaid-mistral is not installed on any Ollama host (gpu-3)" in (response.error_message or "")
    assert "off (down" in (response.error_message or "")

    dead = pool_config(
        rig, [("off", f"http://127.0.0.1:{free_port()}")] * 1 + [("off-2", f"http://127.0.0.1:{free_port()}")]
    )
    async with ModelRouter(dead) as router:
        response = await rig.ask_with(router, "ERD for a blog", force_local=True)
    assert response.fallback_reason == "server_down"
    assert "no Ollama host could serve the request" in (response.error_message or "")


async def test_models_shows_each_host_its_health_and_what_it_holds(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    warm(hosts["gpu-2"], MERMAID)
    off = f"http://127.0.0.1:{free_port()}"
    config = pool_config(
        rig,
        [("gpu-1", hosts["gpu-1"].url), ("gpu-2", hosts["gpu-2"].url), ("off", off)],
        **{"gpu-2": {"vram_budget_gb": 13.0}},
    )
    services = Services.create(config, classify=False)
    try:
        overview = await models_overview(services)
    finally:
        await services.aclose()
    assert overview.error is None  # two of three hosts answered
    rows = {h.name: h for h in overview.hosts}
    assert rows["gpu-2"].loaded == [MERMAID] and rows["gpu-2"].health == "up"
    assert rows["gpu-2"].budget == 13 * GB and rows["gpu-1"].loaded == []
    assert rows["off"].health.startswith("down: ") and rows["off"].installed is None
    mermaid = next(r for r in overview.rows if r.model == MERMAID)
    assert mermaid.status == "ready" and mermaid.installed  # warm on one host of the pool
    table = overview_table(overview)
    assert "gpu-2" in table and "4.1 GB of 13.0 GB" in table and "down: " in table
    assert [h["name"] for h in overview.to_dict()["hosts"]] == ["gpu-1", "gpu-2", "off"]
    panel = {h["name"]: h for h in panel_props(overview)["hosts"]}  # the chat's models panel
    assert panel["gpu-2"]["loaded"] == [MERMAID] and panel["gpu-2"]["memory"] == "4.1 GB of 13.0 GB"
    assert panel["off"]["health"].startswith("down: ")


async def test_warm_up_loads_each_model_where_its_requests_will_go(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    config = pool_config(rig, [("gpu-3", hosts["gpu-3"].url), ("gpu-1", hosts["gpu-1"].url)])
    services = Services.create(config, classify=False)
    lines: list[str] = []
    try:
        results = await warm_models(services, ["erd", "jira"], lambda model, line: lines.append(line))
    finally:
        await services.aclose()
    assert [r.outcome for r in results] == ["loaded", "loaded"]
    assert hosts["gpu-1"].load_count(MERMAID) == 1 and hosts["gpu-3"].load_count(MERMAID) == 0
    # llama3 is installed on both with room: one of them (the faster to answer) loads it, once.
    assert hosts["gpu-3"].load_count(LLAMA) + hosts["gpu-1"].load_count(LLAMA) == 1
    assert "Host: mermaid-mistral is installed on gpu-1, with room to load it" in lines


async def test_unload_frees_the_model_on_every_host_that_holds_it(
    rig: Rig, hosts: dict[str, OllamaEmulator]
) -> None:
    for name in ("gpu-1", "gpu-2"):
        warm(hosts[name], MERMAID)
    warm(hosts["gpu-3"], LLAMA)
    config = pool_config(rig, [(name, emulator.url) for name, emulator in hosts.items()])
    pool = OllamaPool(config.ollama)
    try:
        assert await pool.unload(MERMAID) == ["gpu-1", "gpu-2"]
        assert await pool.loaded() == {"gpu-1": [], "gpu-2": [], "gpu-3": [LLAMA]}
    finally:
        await pool.aclose()
    assert hosts["gpu-3"].load_count(MERMAID) == 0  # never asked of a host that did not hold it
