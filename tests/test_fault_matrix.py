"""The fault matrix: every fault a local or cloud model can throw, through the whole graph.

Each case runs a real request (ModelRouter -> graph -> Ollama / OpenAI emulators on loopback)
with force local off and on, and asserts the exact outcome (the artifact and the model that made
it, or the fallback reason and a clear error) AND that the request left its checkpoint and
exactly one usage row. Limits are short so that the whole matrix runs in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import MERMAID, Rig
from tests.emulators._ollama_models import LOAD_ERRORS, PROXY_502
from tests.emulators.hanging import HangingHost

CLOUD = "gpt-4o-mini"
TRUNCATED = "```mermaid\nerDiagram\n" + "".join(
    f"    TABLE{i} ||--o{{ TABLE{i + 1} : links\n" for i in range(40)
)  # no closing fence: the model was stopped mid-diagram


@dataclass(frozen=True)
class Outcome:
    """What the user gets: a valid artifact from `model`, or an error naming `reason`."""

    ok: bool
    model: str | None
    reason: str | None
    content: bool | None = None  # an artifact was delivered (None: whatever `ok` implies)
    error_has: tuple[str, ...] = ()
    status: str | None = None  # the usage row's status (None: success when ok, else failed)


@dataclass(frozen=True)
class Fault:
    """One fault: how to arrange it, and the outcome with and without force local."""

    name: str
    arrange: Callable[[Rig], dict[str, Any]]
    fallback: Outcome
    forced: Outcome
    within_s: float = 5.0  # the request must be decided within this
    cloud_calls_forced: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ollama(**spec: Any) -> Callable[[Rig], dict[str, Any]]:
    def arrange(rig: Rig) -> dict[str, Any]:
        rig.ollama.update_model(MERMAID, **spec)
        return {}

    return arrange


def _config(**limits: Any) -> Callable[[Rig], dict[str, Any]]:
    return lambda rig: dict(limits)


def _both(arrange_spec: dict[str, Any], **limits: Any) -> Callable[[Rig], dict[str, Any]]:
    def arrange(rig: Rig) -> dict[str, Any]:
        rig.ollama.update_model(MERMAID, **arrange_spec)
        return dict(limits)

    return arrange


def _down(rig: Rig) -> dict[str, Any]:
    return {"ollama_up": False}


def _cloud(**fields: Any) -> Callable[[Rig], dict[str, Any]]:
    def arrange(rig: Rig) -> dict[str, Any]:
        rig.cloud.configure(**fields)
        return {"ollama_up": False}

    return arrange


def _failed(reason: str, *error_has: str, content: bool = False, status: str | None = None) -> Outcome:
    return Outcome(False, None, reason, content, error_has, status)


def _local_ok() -> Outcome:
    return Outcome(True, MERMAID, None)


def _cloud_ok(reason: str) -> Outcome:
    return Outcome(True, CLOUD, reason)


OLLAMA_FAULTS = [
    Fault("refused", _down, _cloud_ok("server_down"), _failed("server_down", "not reachable")),
    Fault(
        "reset_mid_stream",
        _ollama(reset_after=2),
        _cloud_ok("generation_error"),
        _failed("generation_error"),
    ),
    Fault("not_installed", _ollama(installed=False), _cloud_ok("not_installed"), _failed("not_installed")),
    *[
        Fault(
            f"load_500_{i}",
            _ollama(load_error=text),
            _cloud_ok("load_failed"),
            _failed("load_failed", text[:20]),
        )
        for i, text in enumerate(LOAD_ERRORS)
    ],
    Fault(
        "busy_503",
        _both({"busy_for": 50}, max_retries=0),
        _cloud_ok("generation_error"),
        _failed("generation_error", "busy"),
    ),
    Fault(
        "slow_load",
        _both({"load_delay": 1.5}, load_timeout=0.3),
        _cloud_ok("timeout"),
        _failed("timeout"),
    ),
    Fault(
        "no_first_token",
        _both({"first_token_delay": 1.5}, first_token_timeout=0.3, load_timeout=0.3),
        _cloud_ok("timeout"),
        _failed("timeout", "no token"),
    ),
    Fault(
        "stall_mid_stream",
        _both({"stall_after": 2}, timeout=0.5),
        _cloud_ok("timeout"),
        _failed("timeout", "did not finish"),
    ),
    Fault(
        "error_line_mid_stream",
        _ollama(error_after=2),
        _cloud_ok("generation_error"),
        _failed("generation_error", "unexpectedly stopped"),
    ),
    Fault(
        "malformed_ndjson",
        _ollama(garbage_after=2),
        _cloud_ok("generation_error"),
        _failed("generation_error", "malformed"),
    ),
    Fault(
        "html_502_page", _ollama(raw_error=list(PROXY_502)), _cloud_ok("server_down"), _failed("server_down")
    ),
    Fault(
        "empty_reply",
        _ollama(reply=""),
        _cloud_ok("invalid_output"),
        _failed("invalid_output", status="failed"),
    ),
    Fault(
        "length_unclosed_fence",
        _both({"reply": TRUNCATED}, num_predict=24),
        _cloud_ok("invalid_output"),
        _failed("invalid_output", "cut off", content=True, status="invalid"),
    ),
]

CLOUD_FAULTS = [
    Fault(
        "cloud_401",
        _cloud(status_error=(401, "Incorrect API key provided")),
        _failed("server_down", "rejected the API key"),
        _failed("server_down", "no cloud model was tried"),
    ),
    Fault(
        "cloud_429",
        _cloud(status_error=(429, "Rate limit reached"), retry_after="30"),
        _failed("server_down", "rate limit"),
        _failed("server_down", "no cloud model was tried"),
    ),
    Fault(
        "cloud_500",
        _cloud(status_error=(500, "The server had an error")),
        _failed("server_down", "server error"),
        _failed("server_down", "no cloud model was tried"),
    ),
    Fault(
        "cloud_timeout",
        _cloud(hang=True),
        _failed("server_down", "did not answer within"),
        _failed("server_down", "no cloud model was tried"),
    ),
    Fault(
        "cloud_invalid_reply",
        _cloud(reply="Sure! Here is your diagram: a blog has users and posts."),
        _failed("server_down", content=True, status="invalid"),
        _failed("server_down", "no cloud model was tried"),
    ),
    # Gemini comes first in the default order; with no Google key OpenAI answers alone.
    Fault("first_provider_has_no_key", _down, _cloud_ok("server_down"), _failed("server_down")),
]


@pytest.fixture(scope="module", autouse=True)
def sdks_imported() -> None:
    """Import the cloud SDK once, up front: the first fallback must not time its import (~2 s)."""
    import langchain_openai  # noqa: F401


@pytest.fixture
def hanging() -> Iterator[HangingHost]:
    with HangingHost() as host:
        yield host


def _check(rig: Rig, response: Any, expected: Outcome, thread: str) -> None:
    assert response.ok is expected.ok, response
    if expected.model is not None:
        assert response.model_used == expected.model, response
    assert response.fallback_reason == expected.reason, response
    has_content = expected.ok if expected.content is None else expected.content
    assert bool(response.content) is has_content, response
    for text in expected.error_has:
        assert text.lower() in (response.error_message or "").lower(), response.error_message
    assert "Traceback" not in (response.error_message or "")
    # Nothing lost: the request's checkpoint and exactly one usage row, whatever happened.
    assert rig.checkpoint_count(thread) >= 1
    rows = rig.usage_rows()
    assert len(rows) == 1, rows
    status = expected.status or ("success" if expected.ok else "failed")
    assert rows[0]["status"] == status, rows[0]
    assert rows[0]["fallback_reason"] == expected.reason, rows[0]


@pytest.mark.parametrize("force_local", [False, True], ids=["fallback", "force_local"])
@pytest.mark.parametrize("fault", OLLAMA_FAULTS + CLOUD_FAULTS, ids=lambda f: f.name)
async def test_fault(rig: Rig, fault: Fault, force_local: bool) -> None:
    limits = fault.arrange(rig)
    config = rig.config(max_retries=limits.pop("max_retries", 0), **limits)
    config = config.model_copy(update={"fallback": config.fallback.model_copy(update={"timeout": 1.0})})
    thread = f"t-{fault.name}-{force_local}"
    started = time.monotonic()
    response = await rig.ask(config, "ERD for a blog", thread=thread, force_local=force_local)
    elapsed = time.monotonic() - started
    assert elapsed < fault.within_s, f"{fault.name} took {elapsed:.1f} s"
    _check(rig, response, fault.forced if force_local else fault.fallback, thread)
    if force_local:
        completions = [r for r in rig.cloud.requests if r.path.endswith("/chat/completions")]
        assert completions == [], "force local must never call the cloud"


@pytest.mark.parametrize("force_local", [False, True], ids=["fallback", "force_local"])
async def test_host_that_accepts_and_never_answers(rig: Rig, hanging: HangingHost, force_local: bool) -> None:
    config = rig.config(ollama_url=hanging.url, connect_timeout=0.3, inspect_timeout=0.3)
    started = time.monotonic()
    response = await rig.ask(config, "ERD for a blog", thread="t-hang", force_local=force_local)
    # Decided within the connect and inspection limits, not the 5 s generation limit.
    assert time.monotonic() - started < 1.5
    expected = _failed("timeout") if force_local else _cloud_ok("timeout")
    _check(rig, response, expected, "t-hang")


@pytest.mark.parametrize("force_local", [False, True], ids=["fallback", "force_local"])
async def test_eviction_between_two_requests_reloads_with_the_load_allowance(
    rig: Rig, force_local: bool
) -> None:
    from graph.router import ModelRouter

    rig.ollama.update_model(MERMAID, load_delay=0.6)
    config = rig.config(first_token_timeout=0.4, load_timeout=2.0)
    async with ModelRouter(config) as router:
        first = await rig.ask_with(router, "ERD for a blog", thread="t-evict", force_local=force_local)
        rig.ollama.expire(MERMAID)  # Ollama unloaded it on its own (memory pressure, ollama stop)
        second = await rig.ask_with(router, "ERD for a shop", thread="t-evict2", force_local=force_local)
    for response in (first, second):
        assert response.ok and response.model_used == MERMAID and response.fallback_reason is None, response
    assert rig.ollama.load_count(MERMAID) == 2
    rows = rig.usage_rows()
    assert [r["status"] for r in rows] == ["success", "success"]
    assert rig.checkpoint_count("t-evict") >= 1 and rig.checkpoint_count("t-evict2") >= 1


async def test_a_loaded_model_that_is_just_slow_is_cut_at_the_first_token_limit(rig: Rig) -> None:
    """The reload room is only for reloads: a resident model gets the plain first-token limit."""
    from graph.router import ModelRouter

    config = rig.config(first_token_timeout=0.3, load_timeout=5.0)
    async with ModelRouter(config) as router:
        assert (await rig.ask_with(router, "ERD for a blog", thread="t-slow", force_local=True)).ok
        rig.ollama.update_model(MERMAID, first_token_delay=3.0)
        started = time.monotonic()
        slow = await rig.ask_with(router, "ERD for a shop", thread="t-slow2", force_local=True)
    assert time.monotonic() - started < 1.5  # the first-token limit plus one /api/ps, not the 5 s load room
    assert (slow.ok, slow.fallback_reason) == (False, "timeout")
    assert "no token within 0.3 s" in (slow.error_message or "")
