"""Property tests for Ollama's NDJSON stream: garbage in, a Generation or a ProviderError out."""

from __future__ import annotations

import asyncio
import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from providers.ollama_http import parse_line
from providers.ollama_types import Generation
from tests.http_stub import StubServer

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Chunks shaped like Ollama's, with any field holding any JSON value.
chunk_like = st.fixed_dictionaries(
    {},
    optional={
        "message": st.one_of(json_values, st.fixed_dictionaries({"content": json_values})),
        "done": json_values,
        "done_reason": json_values,
        "eval_count": json_values,
        "prompt_eval_count": json_values,
        "load_duration": json_values,
        "error": json_values,
    },
)
lines = st.one_of(
    st.text(max_size=80),
    json_values.map(json.dumps),
    chunk_like.map(json.dumps),
    st.sampled_from(["[" * 5000, "1" * 5000, "Infinity", "NaN", '{"done": true, "eval_count": 1e999}']),
)


@FUZZ
@given(lines)
def test_parse_line_raises_only_provider_errors(line: str) -> None:
    try:
        assert isinstance(parse_line(line, "m"), dict)
    except ProviderError as exc:
        assert exc.reason == "generation_error"


bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(lines, max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(bodies)
def test_generate_on_any_200_body_returns_or_raises_a_provider_error(body: bytes) -> None:
    async def run() -> Generation | ProviderError:
        async with StubServer(lambda request: httpx.Response(200, content=body)) as server:
            config = OllamaConfig(base_url=server.url, max_retries=0, timeout=2.0)
            client = OllamaClient(config)
            try:
                return await client.generate("m", [{"role": "user", "content": "hi"}])
            except ProviderError as exc:
                return exc
            finally:
                await client.aclose()

    outcome = asyncio.run(asyncio.wait_for(run(), 10))  # a hang fails the example instead of the run
    assert isinstance(outcome, Generation | ProviderError)
