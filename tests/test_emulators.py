"""Fidelity tests: real clients (ollama, langchain-ollama, openai) against the emulators."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from tests.emulators._ollama_models import parse_keep_alive
from tests.emulators._text import split_tokens
from tests.emulators.ollama import ModelSpec, OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator

REPO = Path(__file__).resolve().parents[1]
MERMAID = "```mermaid\nerDiagram\n    A ||--o{ B : has\n```"
MERMAID_MODEL = "mermaid-mistral"


def models() -> dict[str, ModelSpec]:
    return {
        MERMAID_MODEL: ModelSpec(reply=MERMAID, size=4_113_301_824),
        "llama3:8b-instruct-q4_K_M": ModelSpec(reply='```json\n[{"summary": "s"}]\n```'),
        "absent": ModelSpec(installed=False),
        "private": ModelSpec(installed=False, pullable=False),
    }


@pytest.fixture
def emu() -> Iterator[OllamaEmulator]:
    emulator = OllamaEmulator(models()).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
async def client(emu: OllamaEmulator) -> AsyncIterator[ollama.AsyncClient]:
    # verify=False only skips loading the CA bundle (~50 ms per client); it is plain HTTP.
    ac = ollama.AsyncClient(host=emu.url, verify=False)
    try:
        yield ac
    finally:
        await aclose(ac)


async def aclose(client: ollama.AsyncClient) -> None:
    await client.close()  # type: ignore[no-untyped-call]  # ollama leaves close() untyped


@pytest.fixture
def cloud() -> Iterator[OpenAIEmulator]:
    emulator = OpenAIEmulator(reply=MERMAID).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
async def oai(cloud: OpenAIEmulator) -> AsyncIterator[openai.AsyncOpenAI]:
    ac = openai.AsyncOpenAI(base_url=cloud.url, api_key="test", max_retries=0)
    try:
        yield ac
    finally:
        await ac.close()


# -- plain HTTP ------------------------------------------------------------------------


def test_root_version_and_gin_fallbacks(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        root = http.get("/")
        assert (root.status_code, root.text) == (200, "Ollama is running")
        assert http.head("/").status_code == 200
        assert http.get("/api/version").json()["version"].count(".") == 2
        assert (http.get("/nope").status_code, http.get("/nope").text) == (404, "404 page not found")
        assert http.get("/api/generate").status_code == 405
        assert root.http_version == "HTTP/1.1"


def test_streams_are_chunked_ndjson_and_whole_replies_have_length(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        body = {"model": MERMAID_MODEL, "prompt": "hi"}  # server default: stream
        with http.stream("POST", "/api/generate", json=body) as resp:
            assert resp.headers["content-type"] == "application/x-ndjson"
            assert resp.headers["transfer-encoding"] == "chunked"
            lines = [json.loads(line) for line in resp.iter_lines() if line]
        whole = http.post("/api/generate", json={**body, "stream": False})
        assert "content-length" in whole.headers
    assert "".join(line["response"] for line in lines) == MERMAID
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert whole.json()["response"] == MERMAID


def test_bad_requests_use_ollamas_codes(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        chat = http.post("/api/chat", json={"messages": []})
        assert (chat.status_code, chat.json()) == (400, {"error": "model is required"})
        gen = http.post("/api/generate", json={"prompt": "x"})  # generate says "not found"
        assert (gen.status_code, gen.json()) == (404, {"error": "model '' not found"})
        assert http.post("/api/generate", content=b"{nope").status_code == 400
        assert http.post("/api/chat", content=b"").json() == {"error": "missing request body"}
        bad_ka = http.post("/api/generate", json={"model": MERMAID_MODEL, "keep_alive": "30"})
        assert bad_ka.status_code == 400 and "missing unit" in bad_ka.json()["error"]


def test_parse_keep_alive_follows_go_durations() -> None:
    assert parse_keep_alive(None) == 300
    assert parse_keep_alive("1h30m") == 5400
    assert parse_keep_alive("250ms") == 0.25
    assert parse_keep_alive(30) == 30
    assert parse_keep_alive("0") == 0
    assert math.isinf(parse_keep_alive(-1)) and math.isinf(parse_keep_alive("-5m"))
    with pytest.raises(ValueError, match="missing unit"):
        parse_keep_alive("30")


def test_split_tokens_round_trips() -> None:
    text = '```html\n<!DOCTYPE html>\n<html lang="en">  </html>\n\n'
    assert "".join(split_tokens(text)) == text and len(split_tokens(text)) > 4


# -- official ollama client --------------------------------------------------------------


async def test_list_shows_installed_models_with_latest_tag(client: ollama.AsyncClient) -> None:
    listed = {m.model: m for m in (await client.list()).models}
    assert set(listed) == {"mermaid-mistral:latest", "llama3:8b-instruct-q4_K_M"}
    entry = listed["mermaid-mistral:latest"]
    assert entry.size == 4_113_301_824 and len(entry.digest or "") == 64
    assert entry.details is not None and entry.details.family == "llama"
    assert entry.details.quantization_level == "Q4_K_M" and entry.modified_at is not None


async def test_either_name_form_reaches_the_same_model(
    client: ollama.AsyncClient, emu: OllamaEmulator
) -> None:
    a = await client.generate(model="mermaid-mistral", prompt="x")
    b = await client.generate(model="mermaid-mistral:latest", prompt="x")
    assert a.response == b.response == MERMAID
    assert a.model == "mermaid-mistral"  # echoed as spelled, like Ollama
    assert emu.load_count("mermaid-mistral:latest") == 1


async def test_show_and_missing_model(client: ollama.AsyncClient) -> None:
    shown = await client.show(MERMAID_MODEL)
    assert shown.details is not None and shown.details.format == "gguf"
    assert shown.capabilities == ["completion"] and "FROM" in (shown.modelfile or "")
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    with pytest.raises(ollama.ResponseError) as err:
        await client.show("absent")  # configured but not installed
    assert err.value.status_code == 404 and err.value.error == "model 'absent' not found"


async def test_pull_streams_progress_then_installs(client: ollama.AsyncClient) -> None:
    statuses = [p async for p in await client.pull("absent", stream=True)]
    assert statuses[0].status == "pulling manifest"
    assert [p.status for p in statuses[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = [p for p in statuses if p.digest]
    assert layers and all(p.status == f"pulling {(p.digest or '')[7:19]}" for p in layers)
    assert any(p.completed == p.total for p in layers) and layers[0].completed is None
    assert "absent:latest" in {m.model for m in (await client.list()).models}
    assert (await client.pull("llama3:8b-instruct-q4_K_M")).status == "success"  # stream=False


async def test_pull_of_unknown_model_fails_like_the_registry(client: ollama.AsyncClient) -> None:
    stream = await client.pull("private", stream=True)
    assert (await anext(stream)).status == "pulling manifest"
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        await anext(stream)
    with pytest.raises(ollama.ResponseError) as err:
        await client.pull("nowhere")
    assert err.value.status_code == 500
    assert err.value.error == "pull model manifest: file does not exist"


async def test_generate_streamed_and_whole(client: ollama.AsyncClient) -> None:
    parts = [p async for p in await client.generate(MERMAID_MODEL, "draw", stream=True)]
    assert len(parts) > 3 and "".join(p.response or "" for p in parts) == MERMAID
    final = parts[-1]
    assert final.done and final.done_reason == "stop" and final.context
    assert final.eval_count == len(parts) - 1 and final.prompt_eval_count == 1
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(getattr(final, name), int) and getattr(final, name) > 0
    whole = await client.generate(
        MERMAID_MODEL, "draw", format={"type": "object"}, options={"temperature": 0}
    )
    assert whole.response == MERMAID and whole.done_reason == "stop"


async def test_chat_streamed_and_whole(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    messages = [{"role": "user", "content": "an ER diagram please"}]
    parts = [p async for p in await client.chat(MERMAID_MODEL, messages, stream=True)]
    assert all(p.message.role == "assistant" for p in parts)
    assert "".join(p.message.content or "" for p in parts) == MERMAID
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done_reason == "stop"
    whole = await client.chat(MERMAID_MODEL, messages, format="json")
    assert whole.message.content == MERMAID and (whole.eval_count or 0) > 1
    assert emu.requests[-1].body["format"] == "json"


def test_invalid_format_fails_when_generation_starts(emu: OllamaEmulator) -> None:
    # The ollama client refuses format="xml" itself, so speak HTTP directly.
    body = {"model": MERMAID_MODEL, "prompt": "x", "format": "xml"}
    with httpx.Client(base_url=emu.url) as http:
        whole = http.post("/api/generate", json={**body, "stream": False})
        streamed = http.post("/api/generate", json=body)
    assert whole.status_code == 500 and whole.json()["error"].startswith('invalid format: "xml"')
    assert streamed.status_code == 200 and json.loads(streamed.text) == whole.json()


async def test_unknown_model_is_404(client: ollama.AsyncClient) -> None:
    for call in (client.generate("nope", "x"), client.chat("nope", [{"role": "user", "content": "x"}])):
        with pytest.raises(ollama.ResponseError) as err:
            await call
        assert err.value.status_code == 404 and err.value.error == "model 'nope' not found"


async def test_empty_prompt_loads_and_ps_reports_it(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    loaded = await client.generate(MERMAID_MODEL)
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    assert (await client.chat(MERMAID_MODEL, [])).done_reason == "load"
    (running,) = (await client.ps()).models
    assert running.model == "mermaid-mistral:latest" and running.size_vram == running.size
    assert running.context_length == 4096 and running.expires_at is not None
    assert running.expires_at.tzinfo is not None  # RFC 3339 with an offset
    left = running.expires_at - datetime.now().astimezone()
    assert timedelta(minutes=4) < left <= timedelta(minutes=5)  # default keep_alive 5m
    assert emu.load_count(MERMAID_MODEL) == 1 and emu.loaded_models() == ["mermaid-mistral:latest"]


async def test_keep_alive_zero_unloads(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    await client.generate(MERMAID_MODEL, keep_alive=-1)
    (forever,) = (await client.ps()).models
    assert forever.expires_at is not None and forever.expires_at.year > 2300
    unloaded = await client.generate(MERMAID_MODEL, keep_alive=0)
    assert unloaded.done_reason == "unload" and (await client.ps()).models == []
    await client.chat(MERMAID_MODEL, [{"role": "user", "content": "x"}], keep_alive=0)
    # Answered, then unloaded once idle: as in Ollama, the runner is released just after the last
    # chunk is sent, so a client may briefly still see it loaded.
    for _ in range(100):
        if not emu.loaded_models():
            break
        await asyncio.sleep(0.01)
    assert emu.loaded_models() == []
    assert emu.load_count(MERMAID_MODEL) == 2


async def test_short_keep_alive_really_expires(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    await client.generate(MERMAID_MODEL, "x", keep_alive="400ms")
    assert [m.model for m in (await client.ps()).models] == ["mermaid-mistral:latest"]
    await asyncio.sleep(0.5)
    assert (await client.ps()).models == []
    await client.generate(MERMAID_MODEL, "x")
    assert emu.load_count(MERMAID_MODEL) == 2  # reloaded after expiry
    emu.expire(MERMAID_MODEL)
    # The runner is released just after its last chunk reaches the client, and expiry unloads it
    # only once idle (as in Ollama): the client can be a moment ahead of that release.
    for _ in range(100):
        if not emu.loaded_models():
            break
        await asyncio.sleep(0.01)
    assert emu.loaded_models() == []


def test_sync_client_works_too(emu: OllamaEmulator) -> None:
    sync = ollama.Client(host=emu.url)
    try:
        assert sync.generate(MERMAID_MODEL, "x").response == MERMAID
        assert [m.model for m in sync.ps().models] == ["mermaid-mistral:latest"]
    finally:
        sync.close()  # type: ignore[no-untyped-call]


# -- langchain-ollama ----------------------------------------------------------------


async def test_chat_ollama_invoke_and_stream(emu: OllamaEmulator) -> None:
    llm = ChatOllama(model=MERMAID_MODEL, base_url=emu.url)
    try:
        msg = await llm.ainvoke([HumanMessage("draw an ER diagram")])
        assert msg.content == MERMAID
        assert msg.response_metadata["done_reason"] == "stop"
        assert msg.response_metadata["eval_count"] == len(split_tokens(MERMAID))
        assert msg.usage_metadata is not None and msg.usage_metadata["output_tokens"] > 1
        chunks = [c async for c in llm.astream("draw")]
        assert len(chunks) > 3 and "".join(str(c.content) for c in chunks) == MERMAID
        total = chunks[0]
        for chunk in chunks[1:]:
            total = total + chunk
        assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
        assert total.usage_metadata["input_tokens"] >= 1
    finally:
        await llm._async_client._client.aclose()  # ChatOllama never closes its clients
        llm._client._client.close()


# -- openai --------------------------------------------------------------------------


async def test_openai_create(oai: openai.AsyncOpenAI, cloud: OpenAIEmulator) -> None:
    done = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "diagram"}]
    )
    assert done.object == "chat.completion" and done.choices[0].message.content == MERMAID
    assert done.choices[0].finish_reason == "stop" and done.usage is not None
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    (request,) = cloud.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    assert [m.id async for m in oai.models.list()] == ["gpt-4o-mini", "gpt-4o"]


async def test_openai_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "diagram"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == MERMAID and chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(split_tokens(MERMAID))
    assert all(c.usage is None for c in chunks[:-1])


async def test_openai_errors(oai: openai.AsyncOpenAI, cloud: OpenAIEmulator) -> None:
    messages: Any = [{"role": "user", "content": "x"}]
    cloud.configure(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError) as auth:
        await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    cloud.configure(api_key=None, status_error=(429, "Rate limit reached"), fail_times=2, retry_after_ms=1)
    with pytest.raises(openai.RateLimitError, match="Rate limit reached"):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    retrying = oai.with_options(max_retries=2)  # one failure left, then success
    done = await retrying.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert done.choices[0].message.content == MERMAID and len(cloud.requests) == 4


async def test_openai_replies_queue_and_delay(oai: openai.AsyncOpenAI, cloud: OpenAIEmulator) -> None:
    cloud.configure(replies=["first", "second"], delay=0.1)
    started = time.monotonic()
    contents = [
        (await oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
        .choices[0]
        .message.content
        for _ in range(3)
    ]
    assert contents == ["first", "second", MERMAID] and time.monotonic() - started >= 0.3


async def test_langchain_chat_openai(cloud: OpenAIEmulator) -> None:
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=cloud.url,
        api_key="test",
        stream_usage=True,
    )
    try:
        assert (await llm.ainvoke("diagram")).content == MERMAID
        chunks = [c async for c in llm.astream("diagram")]
        assert "".join(str(c.content) for c in chunks) == MERMAID
        assert any(c.usage_metadata for c in chunks)
    finally:
        await llm.root_async_client.close()
        llm.root_client.close()


# -- fault injection ---------------------------------------------------------------------


async def test_load_error_is_a_500(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    oom = "model requires more system memory (16.0 GiB) than is available (4.0 GiB)"
    emu.update_model(MERMAID_MODEL, load_error=oom)
    with pytest.raises(ollama.ResponseError) as err:
        [p async for p in await client.generate(MERMAID_MODEL, "x", stream=True)]
    assert (err.value.status_code, err.value.error) == (500, oom)
    assert emu.loaded_models() == [] and emu.load_count(MERMAID_MODEL) == 0


async def test_error_after_sends_an_error_line(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, error_after=2, error_message="runner died")
    received = []
    with pytest.raises(ollama.ResponseError, match="runner died"):
        async for part in await client.generate(MERMAID_MODEL, "x", stream=True):
            received.append(part.response or "")
    assert received == split_tokens(MERMAID)[:2]
    with pytest.raises(ollama.ResponseError) as err:
        await client.chat(MERMAID_MODEL, [{"role": "user", "content": "x"}])
    assert err.value.status_code == 500  # not streamed: the error becomes the status


async def test_status_code_error(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, status_code_error=(503, "server busy, please try again."))
    with pytest.raises(ollama.ResponseError) as err:
        await client.generate(MERMAID_MODEL, "x")
    assert (err.value.status_code, err.value.error) == (503, "server busy, please try again.")


async def test_stall_after_holds_the_stream_open(emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, stall_after=2)
    slow = ollama.AsyncClient(host=emu.url, timeout=0.3)
    received: list[str] = []
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ReadTimeout):
            async for part in await slow.generate(MERMAID_MODEL, "x", stream=True, keep_alive=0):
                received.append(part.response or "")
    finally:
        await aclose(slow)
    assert received == split_tokens(MERMAID)[:2] and 0.3 <= time.monotonic() - started < 1
    # The stalled handler notices the client hung up and releases the model, which
    # keep_alive=0 then unloads; a handler stuck forever would keep it loaded.
    deadline = time.monotonic() + 1
    while emu.loaded_models() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert emu.loaded_models() == []
    with httpx.Client(base_url=emu.url, timeout=0.15) as http, pytest.raises(httpx.ReadTimeout):
        http.post(
            "/api/chat",
            json={"model": MERMAID_MODEL, "messages": [{"role": "user", "content": "x"}], "stream": False},
        )  # not streamed: no reply at all


async def test_stop_releases_a_stalled_client(emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, stall_after=0)
    ac = ollama.AsyncClient(host=emu.url, timeout=5)
    try:
        pending = asyncio.ensure_future(ac.generate(MERMAID_MODEL, "x"))
        await asyncio.sleep(0.1)
        assert not pending.done()
        stopping = time.monotonic()
        await asyncio.to_thread(emu.stop)
        assert time.monotonic() - stopping < 0.5
        with pytest.raises(httpx.RemoteProtocolError):
            await asyncio.wait_for(pending, 1)
    finally:
        await aclose(ac)


async def test_first_token_delay(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    await client.generate(MERMAID_MODEL)  # load first, so only the token delay counts
    emu.update_model(MERMAID_MODEL, first_token_delay=0.3, token_delay=0.01)
    started = time.monotonic()
    stream = await client.generate(MERMAID_MODEL, "x", stream=True)
    await anext(stream)
    first = time.monotonic() - started
    rest = [p async for p in stream]
    assert 0.3 <= first < 1.0
    assert time.monotonic() - started >= 0.3 + 0.01 * (len(rest) - 1)


async def test_replies_queue_pops_in_order(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, replies=["not a diagram", MERMAID], reply="fallback")
    await client.generate(MERMAID_MODEL)  # a load does not consume a reply
    got = [(await client.generate(MERMAID_MODEL, "x")).response for _ in range(3)]
    assert got == ["not a diagram", MERMAID, "fallback"]


async def test_concurrent_requests_share_one_load(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    # Ollama's scheduler queues requests for a model that is loading and hands
    # them the same runner once it is up, so five callers cost one load.
    emu.update_model(MERMAID_MODEL, load_delay=0.3)
    started = time.monotonic()
    replies = await asyncio.gather(*(client.generate(MERMAID_MODEL) for _ in range(5)))
    assert {r.done_reason for r in replies} == {"load"}
    assert emu.load_count(MERMAID_MODEL) == 1
    assert replies[0].load_duration is None  # the load shortcut carries no metrics
    assert 0.3 <= time.monotonic() - started < 1.2  # one load; five in a row take 1.5 s


def test_small_replies_are_not_delayed_by_nagle(emu: OllamaEmulator) -> None:
    # Without TCP_NODELAY each header+body reply waits ~40 ms for a delayed ACK.
    with httpx.Client(base_url=emu.url) as http:
        http.get("/api/version")
        started = time.monotonic()
        for _ in range(20):
            http.post("/api/generate", json={"model": MERMAID_MODEL, "prompt": "x"})
        assert (time.monotonic() - started) / 20 < 0.025


# -- control surfaces and standalone processes ----------------------------------------


def test_http_control_surface(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        set_model = http.post(
            "/_emulator/models", json={"name": "extra", "reply": "hi there", "status_code_error": None}
        )
        assert set_model.json() == {"name": "extra:latest"}
        assert (
            http.post("/api/generate", json={"model": "extra", "prompt": "x", "stream": False}).json()[
                "response"
            ]
            == "hi there"
        )
        assert http.post("/_emulator/models", json={"name": "extra", "bogus": 1}).status_code == 400
        state = http.get("/_emulator/state").json()
        assert state["load_counts"] == {"extra:latest": 1} and state["loaded"] == ["extra:latest"]
        http.post("/_emulator/reset")
        assert http.get("/_emulator/state").json()["loaded"] == []
        assert http.post("/api/generate", json={"model": "extra"}).status_code == 404


def _serve(module: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args], cwd=REPO, stdout=subprocess.PIPE, text=True
    )


def _ready_url(proc: subprocess.Popen[str], label: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith(f"{label} listening on http://127.0.0.1:"), line
    return line.rsplit(" ", 1)[1]


def test_standalone_processes(tmp_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text(json.dumps({"models": {"solo": {"reply": "only me"}}}))
    with (
        _serve("tests.emulators.ollama", "--config", str(config)) as ollama_proc,
        _serve("tests.emulators.openai_compat") as openai_proc,
    ):
        try:
            base = _ready_url(ollama_proc, "ollama emulator")
            tags = httpx.get(f"{base}/api/tags").json()
            assert [m["name"] for m in tags["models"]] == ["solo:latest"]
            v1 = _ready_url(openai_proc, "openai emulator")
            assert v1.endswith("/v1")
            assert httpx.get(f"{v1}/models").json()["object"] == "list"
        finally:
            ollama_proc.terminate()
            openai_proc.terminate()
        assert ollama_proc.wait(5) == 0 and openai_proc.wait(5) == 0


def test_default_models_serve_valid_artifacts() -> None:
    with OllamaEmulator() as default, httpx.Client(base_url=default.url) as http:
        names = [m["name"] for m in http.get("/api/tags").json()["models"]]
        assert sorted(names) == [
            "codellama:13b-instruct-q4_K_M",
            "llama3:8b-instruct-q4_K_M",
            "mermaid-mistral:latest",
        ]
        replies = {
            n: http.post("/api/generate", json={"model": n, "prompt": "x", "stream": False}).json()[
                "response"
            ]
            for n in names
        }
    assert replies["mermaid-mistral:latest"].startswith("```mermaid\nerDiagram")
    assert "<!DOCTYPE html>" in replies["codellama:13b-instruct-q4_K_M"]
    tasks = json.loads(replies["llama3:8b-instruct-q4_K_M"].strip().strip("`")[len("json") :])
    assert all(set(t) == {"summary", "description"} for t in tasks)


def test_openai_http_control_surface(cloud: OpenAIEmulator) -> None:
    with httpx.Client(base_url=cloud.base_url) as http:
        configured = http.post("/_emulator/config", json={"status_error": [500, "boom"]})
        assert configured.json()["status_error"] == [500, "boom"]
        failed = http.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert failed.status_code == 500 and failed.json()["error"]["message"] == "boom"
        assert failed.json()["error"]["type"] == "server_error"
        assert http.post("/_emulator/config", json={"nope": 1}).status_code == 400
        assert http.get("/_emulator/state").json()["request_count"] == 1
        http.post("/_emulator/reset")
        ok = http.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert ok.json()["choices"][0]["message"]["content"] == MERMAID
        missing = http.post("/v1/chat/completions", json={"model": "m"})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"


# -- issue 8: context windows, reply limits, queue-full ----------------------------------


async def test_num_predict_stops_with_done_reason_length(client: ollama.AsyncClient) -> None:
    reply = await client.chat(MERMAID_MODEL, [{"role": "user", "content": "x"}], options={"num_predict": 3})
    assert reply.done_reason == "length" and reply.eval_count == 3
    assert reply.message.content == "".join(split_tokens(MERMAID)[:3])
    whole = await client.chat(MERMAID_MODEL, [{"role": "user", "content": "x"}], options={"num_predict": 0})
    assert whole.done_reason == "stop" and whole.message.content == MERMAID  # 0: no limit, as the runner


async def test_a_different_num_ctx_reloads_like_needs_reload(
    client: ollama.AsyncClient, emu: OllamaEmulator
) -> None:
    await client.generate(MERMAID_MODEL, options={"num_ctx": 8192})  # the load
    await client.generate(MERMAID_MODEL, "x", options={"num_ctx": 8192})
    assert emu.load_count(MERMAID_MODEL) == 1
    emu.update_model(MERMAID_MODEL, load_delay=0.2)
    started = time.monotonic()
    await client.generate(MERMAID_MODEL, "x", options={"num_ctx": 4096})
    assert time.monotonic() - started >= 0.2 and emu.load_count(MERMAID_MODEL) == 2
    assert [m.context_length for m in (await client.ps()).models] == [4096]
    await client.generate(MERMAID_MODEL, "x")  # no num_ctx: the model's default (4096 here)
    assert emu.load_count(MERMAID_MODEL) == 2


async def test_queue_full_is_503_with_ollamas_text(client: ollama.AsyncClient, emu: OllamaEmulator) -> None:
    emu.update_model(MERMAID_MODEL, busy_for=1)
    with pytest.raises(ollama.ResponseError) as err:
        await client.generate(MERMAID_MODEL, "x")
    assert (err.value.status_code, err.value.error) == (
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    )
    assert (await client.generate(MERMAID_MODEL, "x")).response == MERMAID
