"""OllamaClient's error vocabulary: each reply written by a function, sent over a real loopback socket."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from tests.http_stub import Handler, StubServer


@pytest.fixture
async def stub() -> AsyncIterator[StubServer]:
    async with StubServer(lambda r: httpx.Response(500)) as server:
        yield server


def client(stub: StubServer, handler: Handler, **overrides: object) -> OllamaClient:
    stub.handler = handler
    config = OllamaConfig(base_url=stub.url, max_retries=1, **overrides)  # type: ignore[arg-type]
    return OllamaClient(config)


def ndjson(*chunks: dict[str, object]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in chunks)


async def reason_of(stub: StubServer, handler: Handler) -> ProviderError:
    ollama = client(stub, handler)
    try:
        with pytest.raises(ProviderError) as info:
            await ollama.generate("m", [{"role": "user", "content": "hi"}])
    finally:
        await ollama.aclose()
    return info.value


async def test_404_is_not_installed_and_names_the_pull_command(stub: StubServer) -> None:
    err = await reason_of(
        stub, lambda r: httpx.Response(404, json={"error": 'model "m" not found, try pulling it first'})
    )
    assert err.reason == "not_installed"
    assert "ollama pull m" in err.message and err.status_code == 404


# The wording changed across Ollama versions; none of it decides the reason.
LOAD_TEXTS = [
    "model requires more system memory (16.0 GiB) than is available (4.0 GiB)",
    "unable to load full model on GPU",
    "model runner has unexpectedly stopped, this may be due to resource limitations or an internal "
    "error, check ollama server logs for details",
    "a failure some future Ollama words in a way we never saw",
]


@pytest.mark.parametrize("message", LOAD_TEXTS)
async def test_any_500_while_loading_is_load_failed(message: str, stub: StubServer) -> None:
    ollama = client(stub, lambda r: httpx.Response(500, json={"error": message}))
    try:
        with pytest.raises(ProviderError) as info:
            await ollama.load_model("m")
    finally:
        await ollama.aclose()
    assert info.value.reason == "load_failed"
    assert message in info.value.message and ollama.last_error("m") == info.value.message


@pytest.mark.parametrize("message", LOAD_TEXTS)
async def test_500_before_the_first_token_of_an_unloaded_model_is_load_failed(
    message: str, stub: StubServer
) -> None:
    err = await reason_of(stub, lambda r: httpx.Response(500, json={"error": message}))
    assert err.reason == "load_failed"
    assert message in err.message


async def test_500_for_a_model_confirmed_loaded_is_a_generation_error(stub: StubServer) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/generate":
            return httpx.Response(200, json={"model": "m:latest", "done": True, "done_reason": "load"})
        return httpx.Response(500, json={"error": "unable to load full model on GPU"})

    ollama = client(stub, handler)
    await ollama.load_model("m")
    with pytest.raises(ProviderError) as info:
        await ollama.generate("m", [{"role": "user", "content": "hi"}])
    await ollama.aclose()
    assert info.value.reason == "generation_error"  # it was loaded: not a load failure


async def test_error_line_is_a_generation_error_whatever_it_says(stub: StubServer) -> None:
    body = ndjson({"error": "model requires more system memory (16.0 GiB) than is available (4.0 GiB)"})
    err = await reason_of(stub, lambda r: httpx.Response(200, content=body))
    assert err.reason == "generation_error"


# -- bodies that are not Ollama's JSON (issue 8, E) --------------------------------------------

PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
    b"</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
)
HTML = {"content-type": "text/html"}
GARBLED_200 = {
    "html": httpx.Response(200, content=b"<html><body>Welcome to nginx!</body></html>", headers=HTML),
    "truncated": httpx.Response(200, content=b'{"models":[{"name":"m:lat'),
    "empty": httpx.Response(200, content=b""),
    "not an object": httpx.Response(200, content=b"[1, 2]"),
}


async def inspect_error(stub: StubServer, call: str, response: httpx.Response) -> ProviderError:
    ollama = client(stub, lambda r: response)
    try:
        with pytest.raises(ProviderError) as info:
            if call == "tags":
                await ollama.list_available_models()
            elif call == "ps":
                await ollama.list_loaded_models()
            elif call == "status":
                await ollama.get_model_status("m")
            else:
                await ollama.load_model("m")
    finally:
        await ollama.aclose()
    return info.value


@pytest.mark.parametrize("call", ["tags", "ps", "status", "load"])
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_proxys_error_page_means_ollama_is_unreachable(
    call: str, status: int, stub: StubServer
) -> None:
    err = await inspect_error(stub, call, httpx.Response(status, content=PROXY_PAGE, headers=HTML))
    assert err.reason == "server_down"
    assert "502 Bad Gateway" in err.message and "<" not in err.message  # the title, not the markup


@pytest.mark.parametrize("call", ["tags", "ps", "status", "load"])
@pytest.mark.parametrize("kind", list(GARBLED_200))
async def test_a_garbled_200_is_a_generation_error(call: str, kind: str, stub: StubServer) -> None:
    err = await inspect_error(stub, call, GARBLED_200[kind])
    assert err.reason == "generation_error"
    assert "malformed" in err.message


@pytest.mark.parametrize("status", [502, 504])
async def test_chat_through_a_proxy_whose_ollama_is_down_is_server_down(
    status: int, stub: StubServer
) -> None:
    calls: list[int] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, content=PROXY_PAGE, headers=HTML)

    err = await reason_of(stub, proxy)
    assert err.reason == "server_down" and err.status_code == status
    assert len(calls) == (2 if status == 502 else 1)  # a 502 may pass: retried max_retries times


async def test_chat_with_an_html_500_is_classified_by_status(stub: StubServer) -> None:
    err = await reason_of(
        stub, lambda r: httpx.Response(500, content=b"<h1>Internal Server Error</h1>", headers=HTML)
    )
    assert err.reason == "load_failed" and "Internal Server Error" in err.message


async def test_chat_with_an_empty_200_is_a_generation_error(stub: StubServer) -> None:
    err = await reason_of(stub, lambda r: httpx.Response(200, content=b""))
    assert err.reason == "generation_error"


async def test_error_line_mid_stream_is_generation_error(stub: StubServer) -> None:
    body = ndjson({"message": {"role": "assistant", "content": "par"}, "done": False}, {"error": "boom"})
    err = await reason_of(stub, lambda r: httpx.Response(200, content=body))
    assert err.reason == "generation_error"
    assert "boom" in err.message


async def test_stream_without_final_chunk_is_generation_error(stub: StubServer) -> None:
    body = ndjson({"message": {"role": "assistant", "content": "x"}, "done": False})
    err = await reason_of(stub, lambda r: httpx.Response(200, content=body))
    assert err.reason == "generation_error"
    assert "without a final chunk" in err.message


async def test_connection_refused_is_server_down() -> None:
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    ollama = OllamaClient(OllamaConfig(base_url=url, max_retries=1))
    try:
        with pytest.raises(ProviderError) as info:
            await ollama.generate("m", [{"role": "user", "content": "hi"}])
    finally:
        await ollama.aclose()
    assert info.value.reason == "server_down"
    assert url in info.value.message


async def test_busy_server_is_retried_up_to_max_retries(stub: StubServer) -> None:
    calls: list[int] = []

    def busy_then_ok(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                503, json={"error": "server busy, please try again.  maximum pending requests exceeded"}
            )
        return httpx.Response(
            200,
            content=ndjson(
                {"message": {"role": "assistant", "content": "ok"}, "done": False},
                {
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": 3,
                    "eval_count": 1,
                    "load_duration": 1_000_000,
                },
            ),
        )

    ollama = client(stub, busy_then_ok)
    result = await ollama.generate("m", [])
    await ollama.aclose()
    assert len(calls) == 2
    assert result.text == "ok"
    assert (result.stats.input_tokens, result.stats.output_tokens) == (3, 1)
    assert result.stats.load_s == pytest.approx(0.001)


async def test_404_is_never_retried(stub: StubServer) -> None:
    calls: list[int] = []

    def missing(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404, json={"error": "not found"})

    await reason_of(stub, missing)
    assert len(calls) == 1


async def test_tokens_reach_the_callback_in_order(stub: StubServer) -> None:
    body = ndjson(
        {"message": {"role": "assistant", "content": "a"}, "done": False},
        {"message": {"role": "assistant", "content": "b"}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2},
    )
    seen: list[str] = []
    ollama = client(stub, lambda r: httpx.Response(200, content=body))
    result = await ollama.generate("m", [], on_token=seen.append)
    await ollama.aclose()
    assert seen == ["a", "b"] and result.text == "ab"
    assert ollama.confirmed_loaded("m")  # a completed reply shows Ollama has it loaded right now
