"""OllamaClient's error vocabulary, with HTTP faked at the transport (no socket)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **overrides: object) -> OllamaClient:
    config = OllamaConfig(base_url="http://ollama.test:11434", max_retries=1, **overrides)  # type: ignore[arg-type]
    return OllamaClient(config, transport=httpx.MockTransport(handler))


def ndjson(*chunks: dict[str, object]) -> bytes:
    return b"".join(json.dumps(c).encode() + b"\n" for c in chunks)


async def reason_of(handler: Handler) -> ProviderError:
    ollama = client(handler)
    try:
        with pytest.raises(ProviderError) as info:
            await ollama.generate("m", [{"role": "user", "content": "hi"}])
    finally:
        await ollama.aclose()
    return info.value


async def test_404_is_not_installed_and_names_the_pull_command() -> None:
    err = await reason_of(
        lambda r: httpx.Response(404, json={"error": 'model "m" not found, try pulling it first'})
    )
    assert err.reason == "not_installed"
    assert "ollama pull m" in err.message and err.status_code == 404


@pytest.mark.parametrize(
    "message",
    [
        "model requires more system memory (16.0 GiB) than is available (4.0 GiB)",
        "unable to load full model on GPU",
        "llama runner process has terminated: signal: killed",
    ],
)
async def test_load_errors_are_load_failed(message: str) -> None:
    err = await reason_of(lambda r: httpx.Response(500, json={"error": message}))
    assert err.reason == "load_failed"
    assert message in err.message


async def test_error_line_mid_stream_is_generation_error() -> None:
    body = ndjson({"message": {"role": "assistant", "content": "par"}, "done": False}, {"error": "boom"})
    err = await reason_of(lambda r: httpx.Response(200, content=body))
    assert err.reason == "generation_error"
    assert "boom" in err.message


async def test_stream_without_final_chunk_is_generation_error() -> None:
    body = ndjson({"message": {"role": "assistant", "content": "x"}, "done": False})
    err = await reason_of(lambda r: httpx.Response(200, content=body))
    assert err.reason == "generation_error"
    assert "without a final chunk" in err.message


async def test_connection_refused_is_server_down() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    err = await reason_of(refuse)
    assert err.reason == "server_down"
    assert "http://ollama.test:11434" in err.message


async def test_busy_server_is_retried_up_to_max_retries() -> None:
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

    ollama = client(busy_then_ok)
    result = await ollama.generate("m", [])
    await ollama.aclose()
    assert len(calls) == 2
    assert result.text == "ok"
    assert (result.stats.input_tokens, result.stats.output_tokens) == (3, 1)
    assert result.stats.load_s == pytest.approx(0.001)


async def test_404_is_never_retried() -> None:
    calls: list[int] = []

    def missing(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404, json={"error": "not found"})

    await reason_of(missing)
    assert len(calls) == 1


async def test_tokens_reach_the_callback_in_order() -> None:
    body = ndjson(
        {"message": {"role": "assistant", "content": "a"}, "done": False},
        {"message": {"role": "assistant", "content": "b"}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": 2},
    )
    seen: list[str] = []
    ollama = client(lambda r: httpx.Response(200, content=body))
    result = await ollama.generate("m", [], on_token=seen.append)
    await ollama.aclose()
    assert seen == ["a", "b"] and result.text == "ab"
    assert ollama.known_ready("m")  # keep-alive starts after a completed generation
