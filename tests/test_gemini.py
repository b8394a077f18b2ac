"""Gemini as the cloud fallback, through the whole graph, against the Gemini REST emulator on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config import AppConfig, load_config
from tests.conftest import OPENAI_KEY, Rig, free_port
from tests.emulators._ollama_defaults import MERMAID_REPLY
from tests.emulators._text import count_tokens, split_tokens
from tests.emulators.gemini import GeminiEmulator, prompt_text
from validators.registry import Validators

# Two upstream warnings, harmless, that pytest's filterwarnings=error would turn into failures
# (proposed for pyproject's filterwarnings): google-genai subclasses aiohttp's ClientSession, which
# aiohttp warns about on every async session; and on a 5xx langchain-core's error callback calls
# .json() on the response, which for google-genai's aiohttp response is a coroutine never awaited.
GENAI_AIOHTTP_WARNINGS = (
    "ignore:Inheritance class AiohttpClientSession from ClientSession:DeprecationWarning",
    "ignore:coroutine 'ClientResponse.json' was never awaited:RuntimeWarning",
)
pytestmark = [pytest.mark.filterwarnings(w) for w in GENAI_AIOHTTP_WARNINGS]

# Fake, and distinctive so a test can prove it never reaches a checkpoint, a stats row or a log.
GEMINI_KEY = "AIzaSy-modelyard-test-GEMINI-0123456789SECRET"


@pytest.fixture
def gemini() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=GEMINI_KEY) as emu:
        yield emu


def gemini_config(
    rig: Rig,
    gemini: GeminiEmulator,
    *,
    with_gemini: bool = True,
    with_openai: bool = False,
    ollama_up: bool = False,
    timeout: float = 5.0,
    max_retries: int = 0,
    gemini_key: str = GEMINI_KEY,
) -> AppConfig:
    """Like Rig.config, with Gemini (first in the default provider order) on the emulator."""
    env = {
        "OLLAMA_HOST": rig.ollama.url if ollama_up else f"127.0.0.1:{free_port()}",
        "MODELYARD_DATA_DIR": str(rig.data_dir),
        "GOOGLE_GEMINI_BASE_URL": gemini.url,
    }
    if with_gemini:
        env["GOOGLE_API_KEY"] = gemini_key
    if with_openai:
        env |= {"OPENAI_BASE_URL": rig.cloud.url, "OPENAI_API_KEY": OPENAI_KEY}
    config = load_config(env=env)
    limits = {"first_token_timeout": 2.0, "timeout": 5.0, "load_timeout": 5.0}
    return config.model_copy(
        update={
            "ollama": config.ollama.model_copy(update=limits),
            "validation": config.validation.model_copy(update={"repair_attempts": 0}),
            "fallback": config.fallback.model_copy(update={"timeout": timeout, "max_retries": max_retries}),
        }
    )


async def test_ollama_down_falls_back_to_gemini_with_a_valid_erd(rig: Rig, gemini: GeminiEmulator) -> None:
    config = gemini_config(rig, gemini, with_openai=True)
    assert config.fallback.order()[0] == "gemini"
    response = await rig.ask(config, "ERD for a blog", thread="t-gemini")
    assert response.ok and response.valid, response.error_message
    assert (response.is_fallback, response.fallback_reason) == (True, "server_down")
    assert (response.model_used, response.provider) == ("gemini-2.5-flash", "gemini")
    assert response.content.startswith("erDiagram") and "```" not in response.content
    assert any(e["kind"] == "token" for e in rig.events)  # streamed, not one piece at the end

    (sent,) = gemini.generations()
    assert sent.path == "/v1/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY and "key" not in sent.query
    assert "authorization" not in sent.headers
    assert "ERD for a blog" in prompt_text(sent.body)
    assert rig.cloud.requests == []  # Gemini answered: OpenAI, second in order, is never asked

    # Tokens are Gemini's own usageMetadata (cumulative per chunk, so not summed twice).
    prompt_tokens, reply_tokens = count_tokens(prompt_text(sent.body)), len(split_tokens(MERMAID_REPLY))
    assert response.tokens_used == prompt_tokens + reply_tokens
    (row,) = rig.usage_rows()
    assert (row["location"], row["model"], row["status"], row["fallback_reason"]) == (
        "cloud",
        "gemini-2.5-flash",
        "success",
        "server_down",
    )
    assert (row["input_tokens"], row["output_tokens"]) == (prompt_tokens, reply_tokens)
    assert rig.checkpoint_count("t-gemini") >= 1


async def test_gemini_structured_output_holds_a_jira_reply_to_the_schema(
    rig: Rig, gemini: GeminiEmulator
) -> None:
    config = gemini_config(rig, gemini)
    response = await rig.ask(config, "JIRA tasks for a password reset", task="jira")
    assert response.ok and response.valid, response.error_message
    assert (response.provider, response.model_used) == ("gemini", "gemini-2.5-flash")
    (sent,) = gemini.generations()
    # Structured output is one generateContent call (no stream) with the JSON schema attached.
    assert sent.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert sent.generation_config["responseMimeType"] == "application/json"
    assert sent.schema == Validators.response_schema("jira")
    delivered = json.loads(response.content)  # the validator delivers the task list itself
    tasks = delivered["tasks"] if isinstance(delivered, dict) else delivered
    assert [t["summary"] for t in tasks][0] == "Add the password reset request endpoint"


async def test_a_reply_gemini_cannot_hold_to_the_schema_is_not_valid(
    rig: Rig, gemini: GeminiEmulator
) -> None:
    gemini.configure(json_reply=json.dumps({"tasks": []}))  # JSON, but no task: the schema says min 1
    config = gemini_config(rig, gemini)
    config = config.model_copy(
        update={"validation": config.validation.model_copy(update={"cloud_repair_attempts": 0})}
    )
    response = await rig.ask(config, "JIRA tasks for a password reset", task="jira")
    assert not response.ok and not response.valid
    assert response.validation_error
    assert len(gemini.generations()) == 1


# -- the emulator itself, byte for byte -------------------------------------------------


def _post(url: str, body: dict[str, Any], key: str | None = GEMINI_KEY, **params: str) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key is not None else {}
    return httpx.post(url, json=body, headers=headers, params=params, timeout=5)


_HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def test_emulator_streams_sse_events_like_google(gemini: GeminiEmulator) -> None:
    gemini.configure(reply="one two three four five six seven", chunk_pieces=3)
    reply = _post(f"{gemini.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent", _HELLO, alt="sse")
    assert reply.status_code == 200 and reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["transfer-encoding"] == "chunked"
    events = reply.text.split("\r\n\r\n")
    assert events[-1] == ""  # every event ends with a blank line, and there is no [DONE]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(e.startswith("data: {") for e in events[:-1]) and len(chunks) == 3
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "one two three four five six seven"
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [3, 6, 7]  # cumulative
    last = chunks[-1]["usageMetadata"]
    assert last["totalTokenCount"] == last["promptTokenCount"] + last["candidatesTokenCount"]
    assert {c["responseId"] for c in chunks} == {chunks[0]["responseId"]}
    assert chunks[0]["modelVersion"] == "gemini-2.5-flash"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "API_KEY_INVALID"), (401, "ACCESS_TOKEN_TYPE_UNSUPPORTED"), (403, "API_KEY_SERVICE_BLOCKED")],
)
def test_emulator_refuses_a_wrong_key_with_googles_bodies(
    gemini: GeminiEmulator, status: int, reason: str
) -> None:
    gemini.configure(bad_key_status=status)
    reply = _post(f"{gemini.url}/v1beta/models/gemini-2.5-flash:generateContent", _HELLO, key="AIza-wrong")
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["code"] == status
    assert (
        error["status"] == {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status]
    )
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert error["details"][0]["reason"] == reason
    missing = _post(f"{gemini.url}/v1beta/models/gemini-2.5-flash:generateContent", _HELLO, key=None)
    assert missing.status_code == 403 and "unregistered callers" in missing.json()["error"]["message"]


def test_emulator_rate_limits_with_retry_info_and_retry_after(gemini: GeminiEmulator) -> None:
    gemini.configure(status_error=(429, None), retry_delay=1.5, retry_after="2")
    reply = _post(f"{gemini.url}/v1beta/models/gemini-2.5-flash:generateContent", _HELLO)
    assert reply.status_code == 429 and reply.headers["retry-after"] == "2"
    error = reply.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    types = [d["@type"].rsplit(".", 1)[-1] for d in error["details"]]
    assert types == ["QuotaFailure", "Help", "RetryInfo"]
    assert error["details"][-1]["retryDelay"] == "1.5s"


def test_emulator_runs_as_a_module() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.gemini", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"gemini emulator listening on http://127.0.0.1:{port}"
        reply = _post(f"http://127.0.0.1:{port}/v1/models/gemini-2.5-flash:generateContent", _HELLO)
        assert reply.status_code == 200
        assert reply.json()["candidates"][0]["content"]["role"] == "model"
        unknown = _post(f"http://127.0.0.1:{port}/v1/models/gemini-0:generateContent", _HELLO)
        assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
