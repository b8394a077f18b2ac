"""OllamaClient against the Ollama emulator: status, single-flight loads, unload, pull, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama import PS_MAX_AGE_S, OllamaClient
from providers.ollama_types import ModelStatus
from tests.conftest import MERMAID, Clock, free_port
from tests.emulators.ollama import OllamaEmulator

CHAT = [{"role": "user", "content": "ERD for a blog"}]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(ollama: OllamaEmulator, clock: Clock) -> AsyncIterator[OllamaClient]:
    ollama_client = OllamaClient(
        OllamaConfig(base_url=ollama.url, first_token_timeout=0.5, timeout=2.0, load_timeout=2.0),
        clock=clock,
    )
    yield ollama_client
    await ollama_client.aclose()


async def test_status_follows_ollama_through_load_use_and_expiry(
    client: OllamaClient, ollama: OllamaEmulator, clock: Clock
) -> None:
    assert await client.get_model_status(MERMAID) is ModelStatus.NOT_LOADED
    ollama.update_model(MERMAID, load_delay=0.3, token_delay=0.01)
    load = asyncio.create_task(client.load_model(MERMAID))
    await asyncio.sleep(0.05)
    assert await client.get_model_status(MERMAID) is ModelStatus.LOADING
    await load
    assert await client.get_model_status(MERMAID) is ModelStatus.READY
    generation = asyncio.create_task(client.generate(MERMAID, CHAT))
    await asyncio.sleep(0.05)
    assert await client.get_model_status(MERMAID) is ModelStatus.IN_USE
    await generation
    ollama.expire(MERMAID)  # Ollama evicted it: memory pressure, `ollama stop`, keep-alive
    assert await client.get_model_status(MERMAID) is ModelStatus.READY  # within the 1 s cache
    clock.advance(PS_MAX_AGE_S + 0.1)
    assert await client.get_model_status(MERMAID) is ModelStatus.NOT_LOADED
    assert not client.confirmed_loaded(MERMAID)


async def test_status_is_read_from_ps_at_most_once_a_second(
    client: OllamaClient, ollama: OllamaEmulator, clock: Clock
) -> None:
    def ps_calls() -> int:
        return sum(r.path == "/api/ps" for r in ollama.requests)

    await client.load_model(MERMAID)
    for _ in range(5):
        assert await client.is_loaded(MERMAID)
        assert not await client.is_loaded("llama3:8b-instruct-q4_K_M")
    assert ps_calls() == 1  # our own load vouches for MERMAID; one listing answers the rest
    clock.advance(PS_MAX_AGE_S + 0.1)
    ollama.expire(MERMAID)
    assert not await client.is_loaded(MERMAID)
    assert ps_calls() == 2


async def test_evicted_model_gets_the_load_allowance(
    client: OllamaClient, ollama: OllamaEmulator, clock: Clock
) -> None:
    # Issue 8: load 3 s, first-token limit 2 s, model evicted between requests (scaled down).
    ollama.update_model(MERMAID, load_delay=0.8)
    await client.load_model(MERMAID)
    await client.generate(MERMAID, CHAT)
    ollama.expire(MERMAID)
    clock.advance(PS_MAX_AGE_S + 0.1)  # nothing has confirmed it loaded within the last second
    result = await client.generate(MERMAID, CHAT)  # Ollama reloads inside the chat: 0.8 s > 0.5 s
    assert result.text.startswith("```mermaid")
    assert ollama.load_count(MERMAID) == 2


async def test_confirmed_model_gets_only_the_first_token_limit(
    client: OllamaClient, ollama: OllamaEmulator
) -> None:
    await client.load_model(MERMAID)
    ollama.update_model(MERMAID, first_token_delay=0.8)
    with pytest.raises(ProviderError, match="sent no token within 0.5 s"):
        await client.generate(MERMAID, CHAT)


async def test_unload_invalidates_the_ps_cache(client: OllamaClient, ollama: OllamaEmulator) -> None:
    await client.load_model(MERMAID)
    assert await client.is_loaded(MERMAID)
    await client.unload_model(MERMAID)
    assert not await client.is_loaded(MERMAID)  # asked Ollama again, no clock needed


async def test_concurrent_loads_cause_exactly_one(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, load_delay=0.3)
    waits = await asyncio.gather(*(client.load_model(MERMAID) for _ in range(8)))
    assert ollama.load_count(MERMAID) == 1
    loads = [r for r in ollama.requests if r.path == "/api/generate"]
    assert len(loads) == 1 and loads[0].body["keep_alive"] == "30m"
    assert min(waits) >= 0.25


async def test_failed_load_is_error_until_it_loads(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, load_error="model requires more system memory (16.0 GiB) than is available")
    with pytest.raises(ProviderError) as info:
        await client.load_model(MERMAID)
    assert info.value.reason == "load_failed"
    assert await client.get_model_status(MERMAID) is ModelStatus.ERROR
    ollama.update_model(MERMAID, load_error=None)
    await client.load_model(MERMAID)
    assert await client.get_model_status(MERMAID) is ModelStatus.READY


async def test_unload_asks_for_keep_alive_zero(client: OllamaClient, ollama: OllamaEmulator) -> None:
    await client.load_model(MERMAID)
    assert ollama.loaded_models() == [f"{MERMAID}:latest"]
    await client.unload_model(MERMAID)
    assert ollama.loaded_models() == []
    assert ollama.requests[-1].body["keep_alive"] == 0
    assert await client.get_model_status(MERMAID) is ModelStatus.NOT_LOADED


async def test_pull_streams_progress_then_installs(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, installed=False)
    assert MERMAID + ":latest" not in [m.name for m in await client.list_available_models()]
    progress = [p async for p in client.pull_model(MERMAID)]
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    assert any(p.total and p.completed for p in progress)
    assert MERMAID + ":latest" in [m.name for m in await client.list_available_models()]


async def test_pull_of_an_unknown_model_is_not_installed(
    client: OllamaClient, ollama: OllamaEmulator
) -> None:
    ollama.update_model(MERMAID, installed=False, pullable=False)
    with pytest.raises(ProviderError) as info:
        _ = [p async for p in client.pull_model(MERMAID)]
    assert info.value.reason == "not_installed" and "pulling" in info.value.message


async def test_first_token_and_total_limits_are_timeouts(
    client: OllamaClient, ollama: OllamaEmulator
) -> None:
    await client.load_model(MERMAID)
    ollama.update_model(MERMAID, first_token_delay=1.0)
    with pytest.raises(ProviderError, match="sent no token within 0.5 s") as info:
        await client.generate(MERMAID, CHAT)
    assert info.value.reason == "timeout"
    ollama.update_model(MERMAID, first_token_delay=0.0, stall_after=2)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="did not finish within 2 s"):
        await client.generate(MERMAID, CHAT)
    assert time.monotonic() - started < 4


async def test_server_down_is_decided_in_milliseconds() -> None:
    down = OllamaClient(OllamaConfig(base_url=f"http://127.0.0.1:{free_port()}", max_retries=2))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await down.get_model_status(MERMAID)
    elapsed = time.monotonic() - started
    await down.aclose()
    assert info.value.reason == "server_down"
    assert elapsed < 0.5  # refused is an answer, not a 120 s timeout (and not retried)


async def test_generation_reports_ollamas_counts(client: OllamaClient) -> None:
    await client.load_model(MERMAID)
    result = await client.generate(MERMAID, CHAT)
    assert result.text.startswith("```mermaid")
    assert result.stats.output_tokens and result.stats.input_tokens
    assert result.stats.done_reason == "stop"
    assert result.stats.first_token_s is not None and result.stats.first_token_s <= result.stats.total_s


async def test_replies_reuse_one_connection(client: OllamaClient, ollama: OllamaEmulator) -> None:
    # A reply is read to the end of its body, so its connection goes back to the pool: without
    # that every request opened a new TCP connection (a handshake each, more to a remote host).
    messages = [{"role": "user", "content": "ERD for a blog"}]
    await client.generate(MERMAID, messages)
    before = ollama.connections
    for _ in range(5):
        assert (await client.generate(MERMAID, messages)).text
    assert ollama.connections == before
