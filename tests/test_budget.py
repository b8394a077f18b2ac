"""The memory budget (issue 11, item 1): LRU unloads, never of a busy model, and no swap thrash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from config.schema import AppConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from tests.conftest import Rig

MERMAID = "mermaid-mistral:latest"  # 4.1 GB in the emulator
CODELLAMA = "codellama:13b-instruct-q4_K_M"  # 7.9 GB
LLAMA3 = "llama3:8b-instruct-q4_K_M"  # 4.9 GB
MESSAGES = [{"role": "user", "content": "ERD for a blog"}]
SHORT = "```mermaid\nflowchart LR\n  A --> B\n  B --> C\n```"  # a dozen chunks


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[OllamaClient]:
    async with _client(rig.config(vram_budget_gb=13.0)) as made:
        yield made


class _client:  # noqa: N801 - used like a function
    def __init__(self, config: AppConfig) -> None:
        self.client = OllamaClient(config.ollama)

    async def __aenter__(self) -> OllamaClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


def unloads(rig: Rig) -> list[str]:
    """The models the router asked Ollama to unload (an empty generate with keep_alive 0), in order."""
    return [
        r.body["model"]
        for r in rig.ollama.requests
        if r.path == "/api/generate" and isinstance(r.body, dict) and r.body.get("keep_alive") == 0
    ]


async def test_a_load_over_budget_unloads_the_least_recently_used_idle_model(
    rig: Rig, client: OllamaClient
) -> None:
    heard: list[str] = []
    await client.load_model(MERMAID)
    await client.load_model(LLAMA3)
    await client.generate(MERMAID, MESSAGES)  # mermaid is now the more recently used
    await client.load_model(CODELLAMA, notify=heard.append)  # 4.1 + 4.9 + 7.9 > 13: one must go
    assert unloads(rig) == [LLAMA3]
    assert sorted(rig.ollama.loaded_models()) == sorted([MERMAID, CODELLAMA])
    assert len(heard) == 1 and heard[0].startswith("Unloading llama3:8b-instruct-q4_K_M (4.9 GB, idle ")
    assert heard[0].endswith("to make room for codellama:13b-instruct-q4_K_M")


async def test_a_load_that_fits_unloads_nothing(rig: Rig, client: OllamaClient) -> None:
    await client.load_model(MERMAID)
    await client.load_model(LLAMA3)  # 9.0 GB of 13
    assert unloads(rig) == [] and len(rig.ollama.loaded_models()) == 2


async def test_a_model_larger_than_the_budget_is_refused_without_unloading_anything(rig: Rig) -> None:
    async with _client(rig.config(vram_budget_gb=6.0)) as client:
        await client.load_model(MERMAID)
        with pytest.raises(ProviderError) as caught:
            await client.load_model(CODELLAMA)
    assert caught.value.reason == "load_failed"
    assert (
        "needs 7.9 GB, more than the memory budget of 6.0 GB (ollama.vram_budget_gb)" in caught.value.message
    )
    assert unloads(rig) == [] and rig.ollama.loaded_models() == [MERMAID]


async def test_a_busy_model_is_never_unloaded_the_swap_waits_for_its_reply(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", reply=SHORT, token_delay=0.05)
    heard: list[str] = []
    async with _client(rig.config(vram_budget_gb=8.0)) as client:  # one model at a time
        await client.load_model(MERMAID)
        reply = asyncio.create_task(client.generate(MERMAID, MESSAGES))
        while not client.budget.busy(MERMAID):
            await asyncio.sleep(0.01)
        await client.load_model(LLAMA3, notify=heard.append)
        assert reply.done(), "llama3 was loaded while mermaid was still answering"
        assert (await reply).text.startswith("```mermaid")
    assert (
        heard[0]
        == "Waiting for mermaid-mistral to finish before loading llama3:8b-instruct-q4_K_M (memory budget)"
    )
    assert heard[1].startswith("Unloading mermaid-mistral (4.1 GB, idle 0 s)")
    assert rig.ollama.loaded_models() == [LLAMA3]


async def test_a_budget_that_busy_models_hold_too_long_fails_with_the_reason(rig: Rig) -> None:
    rig.ollama.update_model("mermaid-mistral", reply=SHORT, token_delay=0.05)
    async with _client(rig.config(vram_budget_gb=8.0, budget_wait=0.2)) as client:
        await client.load_model(MERMAID)
        reply = asyncio.create_task(client.generate(MERMAID, MESSAGES))
        while not client.budget.busy(MERMAID):
            await asyncio.sleep(0.01)
        with pytest.raises(ProviderError) as caught:
            await client.load_model(LLAMA3)
        assert (await reply).text  # the busy model's reply was never cut
    assert caught.value.reason == "load_failed"
    assert "mermaid-mistral still busy after 0.2 s (ollama.budget_wait)" in caught.value.message
    assert unloads(rig) == [] and rig.ollama.loaded_models() == [MERMAID]


async def test_requests_queued_during_a_swap_cause_one_swap_not_many(rig: Rig) -> None:
    """Budget for one model; mermaid busy; 3 llama3 requests, then 2 mermaid ones, all at once.

    Without grouping each request would swap: mermaid out, llama3 in, mermaid back, ... Here the
    three llama3 requests share one swap, and the two later mermaid requests share the one back.
    """
    rig.ollama.update_model("mermaid-mistral", reply=SHORT, token_delay=0.03)
    rig.ollama.update_model("llama3:8b-instruct-q4_K_M", reply=SHORT, token_delay=0.01)
    async with _client(rig.config(vram_budget_gb=8.0)) as client:
        await client.load_model(MERMAID)
        first = asyncio.create_task(client.generate(MERMAID, MESSAGES))
        while not client.budget.busy(MERMAID):
            await asyncio.sleep(0.01)
        llama = [asyncio.create_task(client.generate(LLAMA3, MESSAGES)) for _ in range(3)]
        await asyncio.sleep(0.05)  # the llama3 swap now waits for mermaid's reply
        later = [asyncio.create_task(client.generate(MERMAID, MESSAGES)) for _ in range(2)]
        replies = await asyncio.gather(first, *llama, *later)
    assert all(r.text for r in replies)
    assert rig.ollama.load_count(LLAMA3) == 1
    assert rig.ollama.load_count(MERMAID) == 2  # the first load, and once back after the llama3 group
    assert unloads(rig) == [MERMAID, LLAMA3]


async def test_without_a_budget_nothing_is_unloaded(rig: Rig) -> None:
    async with _client(rig.config()) as client:
        for model in (MERMAID, LLAMA3, CODELLAMA):
            await client.load_model(model)
    assert unloads(rig) == [] and len(rig.ollama.loaded_models()) == 3


async def test_the_status_stream_says_what_was_unloaded_and_why(rig: Rig) -> None:
    config = rig.config(vram_budget_gb=8.0)
    assert (await rig.ask(config, "ERD for a blog", task="erd")).ok
    page = await rig.ask(config, "landing page for a bakery", task="html")
    assert page.ok and page.model_used == CODELLAMA
    lines = rig.statuses()
    unloading = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("Unloading mermaid-mistral (4.1 GB, idle ")
        and line.endswith("to make room for codellama:13b-instruct-q4_K_M")
    )
    loading = next(i for i, line in enumerate(lines) if line.startswith("Loading codellama"))
    assert unloading < loading, lines  # why it waits, then the load itself
    assert rig.ollama.loaded_models() == [CODELLAMA]


async def test_a_load_s_time_leaves_out_the_wait_for_room(rig: Rig) -> None:
    """The usage row's load_time_s (whose median the next load is expected to take) is the load's
    own time: the wait for a busy model to finish before it is in the request's time only."""
    config = rig.config(vram_budget_gb=8.0)  # one model at a time
    rig.ollama.update_model("mermaid-mistral", reply=SHORT, token_delay=0.06)  # ~0.7 s of reply
    rig.ollama.update_model(CODELLAMA, load_delay=0.2)
    from graph.router import ModelRouter

    async with ModelRouter(config) as router:
        assert (await router.generate("erd", "ERD for a blog")).ok  # mermaid loaded first
        diagram = asyncio.create_task(router.generate("erd", "ERD for a shop"))
        while not router.services.ollama.budget.busy(MERMAID):
            await asyncio.sleep(0.01)
        page = await router.generate("html", "landing page for a bakery")
        assert (await diagram).ok
    assert page.ok and page.model_used == CODELLAMA
    row = rig.usage_rows()[-1]
    assert row["local_model"] == CODELLAMA and row["generation_time_s"] > 0.5  # it waited for mermaid
    assert 0.2 <= row["load_time_s"] < 0.45, (row["load_time_s"], row["generation_time_s"])
