"""Each emulator fault the fault matrix needs, checked once through OllamaClient (issue 8, F and B)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from providers.ollama_types import ModelStatus
from tests.conftest import MERMAID
from tests.emulators.hanging import HangingHost
from tests.emulators.ollama import LOAD_ERRORS, PROXY_502, SERVER_BUSY, OllamaEmulator

CHAT = [{"role": "user", "content": "ERD for a blog"}]


def make_client(url: str, **limits: float | int) -> OllamaClient:
    config = {"first_token_timeout": 0.5, "timeout": 2.0, "load_timeout": 2.0, "max_retries": 1, **limits}
    return OllamaClient(OllamaConfig(base_url=url, **config))  # type: ignore[arg-type]


@pytest.fixture
async def client(ollama: OllamaEmulator) -> AsyncIterator[OllamaClient]:
    ollama_client = make_client(ollama.url)
    yield ollama_client
    await ollama_client.aclose()


async def failure(client: OllamaClient) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await client.generate(MERMAID, CHAT)
    return info.value


async def test_connection_reset_mid_stream(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, reset_after=3)
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        await client.generate(MERMAID, CHAT, on_token=seen.append)
    assert info.value.reason == "generation_error" and "connection to Ollama lost" in info.value.message
    assert len(seen) == 3  # three chunks arrived before the reset


def test_connection_reset_is_a_real_rst(ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, reset_after=1)
    body = {"model": MERMAID, "messages": CHAT}
    with (
        httpx.Client(base_url=ollama.url) as http,
        http.stream("POST", "/api/chat", json=body) as resp,
        pytest.raises(httpx.ReadError, match="reset"),  # not a clean EOF
    ):
        list(resp.iter_lines())


async def test_malformed_line_mid_stream(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, garbage_after=2)
    err = await failure(client)
    assert err.reason == "generation_error" and "malformed stream line" in err.message


async def test_proxy_html_error_page(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, raw_error=PROXY_502)
    err = await failure(client)
    assert err.reason == "server_down" and "502 Bad Gateway" in err.message


async def test_proxy_in_front_of_every_route(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.set_proxy_error(PROXY_502)
    for call in (client.list_available_models(), client.list_loaded_models(), client.load_model(MERMAID)):
        with pytest.raises(ProviderError) as info:
            await call
        assert info.value.reason == "server_down"


async def test_busy_queue_is_retried_then_reported(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, busy_for=1)
    assert (await client.generate(MERMAID, CHAT)).text  # one 503, then served on the retry
    ollama.update_model(MERMAID, busy_for=5)
    err = await failure(client)  # max_retries 1: two 503s in a row
    assert err.reason == "generation_error" and err.status_code == 503 and SERVER_BUSY in err.message
    assert ollama.model(MERMAID).busy_for == 3


async def test_empty_body(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, empty_body=True)
    with pytest.raises(ProviderError) as info:
        await client.load_model(MERMAID)
    assert info.value.reason == "generation_error" and "malformed reply" in info.value.message
    err = await failure(client)
    assert err.reason == "generation_error" and "without a final chunk" in err.message


async def test_empty_reply(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, reply="")
    result = await client.generate(MERMAID, CHAT)
    assert result.text == "" and result.stats.done_reason == "stop"


async def test_num_predict_cuts_the_reply_with_done_reason_length(ollama: OllamaEmulator) -> None:
    client = make_client(ollama.url, num_predict=16)
    try:
        result = await client.generate(MERMAID, CHAT)
    finally:
        await client.aclose()
    assert result.stats.done_reason == "length" and result.stats.output_tokens == 16
    assert (result.stats.num_predict, result.stats.num_ctx) == (16, 8192)
    assert len(result.text) < len(ollama.model(MERMAID).reply)


@pytest.mark.parametrize("message", LOAD_ERRORS)
async def test_load_errors_of_each_ollama_version(
    client: OllamaClient, ollama: OllamaEmulator, message: str
) -> None:
    ollama.update_model(MERMAID, load_error=message)
    with pytest.raises(ProviderError) as info:
        await client.load_model(MERMAID)
    assert info.value.reason == "load_failed" and message in info.value.message
    err = await failure(client)  # the chat that has to load it fails the same way
    assert err.reason == "load_failed"


async def test_eviction_between_requests(client: OllamaClient, ollama: OllamaEmulator) -> None:
    await client.load_model(MERMAID)
    ollama.expire(MERMAID)
    assert [m.name for m in await client.list_loaded_models()] == []
    assert await client.get_model_status(MERMAID) is ModelStatus.NOT_LOADED


async def test_a_different_num_ctx_reloads_the_model(ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, load_delay=0.6)
    client = make_client(ollama.url, max_num_ctx=65536)
    try:
        await client.load_model(MERMAID)
        long_prompt = [{"role": "user", "content": "ERD for these notes: " + "x" * 30_000}]
        result = await client.generate(MERMAID, long_prompt)  # 0.6 s reload > 0.5 s first-token limit
        loaded = await client.list_loaded_models()
    finally:
        await client.aclose()
    assert result.stats.num_ctx == 16384 and result.text
    assert ollama.load_count(MERMAID) == 2
    assert [m.context_length for m in loaded] == [16384]


async def test_pull_that_stops_moving_times_out(client: OllamaClient, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, installed=False, pull_stall_after=3)
    stalling = make_client(ollama.url, pull_stall_timeout=0.3)
    progress = []
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError, match="no progress from Ollama for 0.3 s") as info:
            async for line in stalling.pull_model(MERMAID):
                progress.append(line)
    finally:
        await stalling.aclose()
    assert info.value.reason == "timeout" and len(progress) == 3
    assert time.monotonic() - started < 2.0


async def test_hanging_host_bounds_every_inspection_and_the_pull() -> None:
    with HangingHost() as host:
        client = make_client(host.url, connect_timeout=0.2, inspect_timeout=0.3, pull_stall_timeout=0.3)
        try:
            for call in (
                client.list_available_models(),
                client.list_loaded_models(),
                client.get_model_status(MERMAID),
                client.is_loaded(MERMAID),
            ):
                started = time.monotonic()
                with pytest.raises(ProviderError) as info:
                    await call
                assert info.value.reason == "timeout"
                assert time.monotonic() - started < 0.2 + 0.3 + 0.5
            started = time.monotonic()
            with pytest.raises(ProviderError, match="stalled"):
                _ = [p async for p in client.pull_model(MERMAID)]
            assert time.monotonic() - started < 1.5
        finally:
            await client.aclose()
        assert host.accepted >= 1


def test_new_faults_are_reachable_over_http(ollama: OllamaEmulator) -> None:
    fields = {
        "reset_after": 1,
        "garbage_after": 2,
        "raw_error": list(PROXY_502),
        "busy_for": 1,
        "empty_body": True,
        "pull_stall_after": 0,
    }
    with httpx.Client(base_url=ollama.url) as http:
        assert (
            http.post("/_emulator/models", json={"name": MERMAID, "merge": True, **fields}).status_code == 200
        )
        spec = ollama.model(MERMAID)
        assert (spec.reset_after, spec.garbage_after, spec.raw_error) == (1, 2, PROXY_502)
        assert (spec.busy_for, spec.empty_body, spec.pull_stall_after) == (1, True, 0)
        assert http.post("/_emulator/server", json={"proxy_error": list(PROXY_502)}).status_code == 200
        page = http.get("/api/tags")
        assert page.status_code == 502 and page.headers["content-type"] == "text/html"
        assert http.get("/_emulator/state").status_code == 200  # control routes stay reachable
        assert http.post("/_emulator/server", json={"proxy_error": None}).status_code == 200
        assert http.get("/api/tags").status_code == 200
        assert http.post("/_emulator/server", json={"bogus": 1}).status_code == 400
