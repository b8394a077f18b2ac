"""Cloud faults (bad key, 429, 5xx, hang, unreadable reply) through the whole graph, on the emulators."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from config import AppConfig
from tests.conftest import OPENAI_KEY, Rig
from tests.emulators.gemini import GeminiEmulator
from tests.test_gemini import GEMINI_KEY, GENAI_AIOHTTP_WARNINGS, gemini_config

pytestmark = [pytest.mark.filterwarnings(w) for w in GENAI_AIOHTTP_WARNINGS]


@pytest.fixture
def gemini() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=GEMINI_KEY) as emu:
        yield emu


def _gemini_status(rig: Rig) -> str:
    (line,) = [s for s in rig.statuses() if s.startswith("gemini failed: ")]
    return line


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_a_rejected_gemini_key_is_not_retried_and_openai_answers(
    rig: Rig, gemini: GeminiEmulator, status: int
) -> None:
    gemini.configure(bad_key_status=status, echo_key=True)
    # One retry allowed, so "exactly one request" shows the key was never retried.
    config = gemini_config(
        rig, gemini, with_openai=True, max_retries=1, gemini_key="AIza-not-the-right-key-42"
    )
    response = await rig.ask(config, "ERD for a blog")
    assert response.ok and response.provider == "openai", response.error_message
    assert len(gemini.generations()) == 1
    line = _gemini_status(rig)
    assert "Gemini rejected the API key" in line and "check GOOGLE_API_KEY" in line
    assert "AIza-not-the-right-key-42" not in line and "not-the-right" not in line
    assert len(rig.cloud.requests) == 1


async def test_gemini_rate_limit_retries_when_retry_info_fits_the_budget(
    rig: Rig, gemini: GeminiEmulator
) -> None:
    gemini.configure(status_error=(429, None), fail_times=1, retry_delay=0.3)
    config = gemini_config(rig, gemini, max_retries=1, timeout=2.0)
    started = time.perf_counter()
    response = await rig.ask(config, "ERD for a blog")
    assert response.ok and response.provider == "gemini", response.error_message
    assert len(gemini.generations()) == 2
    assert time.perf_counter() - started >= 0.3  # RetryInfo.retryDelay was honoured


async def test_gemini_rate_limit_beyond_the_budget_falls_through_at_once(
    rig: Rig, gemini: GeminiEmulator
) -> None:
    gemini.configure(status_error=(429, None), retry_delay=None, retry_after="30")
    config = gemini_config(rig, gemini, with_openai=True, max_retries=2, timeout=1.0)
    started = time.perf_counter()
    response = await rig.ask(config, "ERD for a blog")
    assert response.ok and response.provider == "openai", response.error_message
    assert time.perf_counter() - started < 3  # did not sit out the 30 s
    assert len(gemini.generations()) == 1
    line = _gemini_status(rig)
    assert "Gemini is rate limiting requests (HTTP 429" in line and "retry after 30 s" in line


@pytest.mark.parametrize(
    ("fault", "retries", "requests", "says"),
    [
        ({"status_error": (500, None)}, 1, 2, "Gemini had a server error (HTTP 500"),  # 5xx: retried
        ({"status_error": (400, "Invalid value at 'contents'")}, 1, 1, "Gemini refused the request"),
        ({"hang": True}, 0, 1, "Gemini did not answer within the 0.5 s cloud time limit"),
        ({"malformed": True}, 0, 1, "Gemini sent a reply that could not be read"),
    ],
)
async def test_each_gemini_failure_is_named_and_openai_answers(
    rig: Rig, gemini: GeminiEmulator, fault: dict[str, Any], retries: int, requests: int, says: str
) -> None:
    gemini.configure(**fault)
    timeout = 0.5 if fault.get("hang") else 2.0
    config = gemini_config(rig, gemini, with_openai=True, max_retries=retries, timeout=timeout)
    response = await rig.ask(config, "ERD for a blog")
    assert response.ok and response.provider == "openai", response.error_message
    assert len(gemini.generations()) == requests
    assert says in _gemini_status(rig)


async def test_gemini_failure_alone_ends_in_a_clear_error(rig: Rig, gemini: GeminiEmulator) -> None:
    gemini.configure(hang=True)
    config = gemini_config(rig, gemini, timeout=0.4)
    started = time.perf_counter()
    response = await rig.ask(config, "ERD for a blog")
    assert time.perf_counter() - started < 3
    assert not response.ok and response.fallback_reason == "server_down"
    assert "Gemini did not answer within the 0.4 s cloud time limit" in (response.error_message or "")
    (row,) = rig.usage_rows()
    assert row["status"] == "failed"


async def test_only_openai_configured_never_calls_gemini(rig: Rig, gemini: GeminiEmulator) -> None:
    config = gemini_config(rig, gemini, with_gemini=False, with_openai=True)
    response = await rig.ask(config, "ERD for a blog")
    assert response.ok and response.provider == "openai" and response.model_used == "gpt-4o-mini"
    assert gemini.requests == []
    assert not any("gemini" in s.lower() for s in rig.statuses())


# -- the OpenAI-compatible side --------------------------------------------------------


def _openai_only(rig: Rig, *, timeout: float = 2.0, max_retries: int = 0) -> AppConfig:
    config = rig.config(ollama_up=False)
    return config.model_copy(
        update={
            "fallback": config.fallback.model_copy(update={"timeout": timeout, "max_retries": max_retries})
        }
    )


@pytest.mark.parametrize(
    ("fault", "retries", "requests", "says"),
    [
        (
            {"api_key": "sk-the-right-one-0000000000"},
            1,
            1,
            "OpenAI rejected the API key (HTTP 401: Incorrect API key provided",
        ),
        ({"status_error": (429, "Rate limit reached"), "retry_after": "30"}, 2, 1, "retry after 30 s"),
        ({"status_error": (500, "The server had an error")}, 1, 2, "OpenAI had a server error (HTTP 500"),
        ({"status_error": (409, "conflict")}, 2, 1, "OpenAI refused the request (HTTP 409"),
        ({"hang": True}, 0, 1, "OpenAI did not answer within the 0.5 s cloud time limit"),
    ],
)
async def test_each_openai_failure_is_named_and_bounded(
    rig: Rig, fault: dict[str, Any], retries: int, requests: int, says: str
) -> None:
    rig.cloud.configure(**fault)
    timeout = 0.5 if fault.get("hang") else 2.0
    started = time.perf_counter()
    response = await rig.ask(_openai_only(rig, timeout=timeout, max_retries=retries), "ERD for a blog")
    assert time.perf_counter() - started < 4
    assert not response.ok
    assert says in (response.error_message or "")
    assert len(rig.cloud.requests) == requests
    assert OPENAI_KEY not in (response.error_message or "")
    assert "***" not in (response.error_message or "")  # not even the masked key OpenAI echoes


async def test_openai_rate_limit_retry_after_within_the_budget_is_honoured(rig: Rig) -> None:
    rig.cloud.configure(status_error=(429, "Rate limit reached"), fail_times=1, retry_after="0.3")
    started = time.perf_counter()
    response = await rig.ask(_openai_only(rig, max_retries=1), "ERD for a blog")
    assert response.ok, response.error_message
    assert len(rig.cloud.requests) == 2 and time.perf_counter() - started >= 0.3


async def test_an_openai_reply_that_fails_validation_is_invalid_output(rig: Rig) -> None:
    rig.cloud.configure(reply="Sure! Users have posts, posts have comments.")
    response = await rig.ask(_openai_only(rig), "ERD for a blog")
    assert not response.ok and not response.valid
    assert response.is_fallback and response.provider == "openai"
    assert response.validation_error


# -- secrets ---------------------------------------------------------------------------


async def test_fake_keys_never_reach_stores_logs_or_messages(
    rig: Rig, gemini: GeminiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    gemini.configure(api_key="AIza-the-right-one", echo_key=True)  # Google echoes the bad key
    rig.cloud.configure(status_error=(401, f"Incorrect API key provided: {OPENAI_KEY}"))
    config = gemini_config(rig, gemini, with_openai=True)
    response = await rig.ask(config, "ERD for a blog", thread="t-keys")
    assert not response.ok
    message = response.error_message or ""
    assert "Gemini rejected the API key" in message and "OpenAI rejected the API key" in message
    for key in (GEMINI_KEY, OPENAI_KEY):
        half = key[: len(key) // 2]
        assert key not in message and half not in message
        assert key not in caplog.text and half not in caplog.text
        for event in rig.events:
            assert key not in str(event) and half not in str(event)
        for name in ("checkpoints.db", "usage.db"):
            for path in rig.data_dir.glob(f"{name}*"):
                data = path.read_bytes()
                assert key.encode() not in data and half.encode() not in data, path
    assert len(gemini.generations()) == 1 and len(rig.cloud.requests) == 1
