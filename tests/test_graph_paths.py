"""Every path through the graph, against the Ollama and OpenAI-compatible emulators on loopback."""

from __future__ import annotations

import pytest

from graph.storage import Stored, flat
from tests.conftest import MERMAID, OPENAI_KEY, Rig


async def test_local_success_is_validated_counted_and_checkpointed(rig: Rig) -> None:
    response = await rig.ask(rig.config(), "ERD for a blog", thread="t-local")
    assert response.ok and response.valid
    assert response.content.startswith("erDiagram")
    assert "```" not in response.content
    assert (response.model_used, response.is_fallback, response.fallback_reason) == (MERMAID, False, None)
    assert response.tokens_used > 0
    statuses = rig.statuses()
    assert any(s.startswith(f"Loading {MERMAID}") for s in statuses)
    assert "Validating Mermaid syntax" in statuses
    assert statuses[-1].startswith(f"Generated using {MERMAID} (local) in ")
    assert any(e["kind"] == "token" for e in rig.events)
    (row,) = rig.usage_rows()
    assert (row["status"], row["location"], row["model"], row["validation"]) == (
        "success",
        "local",
        MERMAID,
        "valid",
    )
    assert row["output_tokens"] > 0 and row["input_tokens"] > 0
    assert row["load_time_s"] is not None and row["first_token_s"] is not None
    assert rig.checkpoint_count("t-local") >= 1  # written once, at the end (durability="exit")
    assert rig.ollama.load_count(MERMAID) == 1


@pytest.mark.parametrize(
    ("reason", "fault"),
    [
        ("server_down", {}),
        ("not_installed", {"installed": False}),
        (
            "load_failed",
            {"load_error": "model requires more system memory (16.0 GiB) than is available (4.0 GiB)"},
        ),
        ("timeout", {"first_token_delay": 1.5}),
        ("generation_error", {"error_after": 2}),
        ("invalid_output", {"reply": "Sure! Here is your diagram: users have posts."}),
    ],
)
async def test_each_local_failure_falls_back_to_the_cloud(
    rig: Rig, reason: str, fault: dict[str, object]
) -> None:
    rig.ollama.update_model(MERMAID, **fault)
    config = rig.config(ollama_up=reason != "server_down", first_token_timeout=0.5)
    response = await rig.ask(config, "ERD for a blog", thread=f"t-{reason}")
    assert response.ok, response.error_message
    assert response.is_fallback and response.fallback_reason == reason
    assert response.model_used == "gpt-4o-mini" and response.provider == "openai"
    assert response.content.startswith("erDiagram")
    assert any(f"Local model failed ({reason}" in s and "falling back to OpenAI" in s for s in rig.statuses())
    assert rig.statuses()[-1] == f"Local model unavailable ({reason}). Used gpt-4o-mini (cloud) instead."
    (row,) = rig.usage_rows()
    assert (row["location"], row["fallback_reason"], row["status"]) == ("cloud", reason, "success")
    assert row["local_model"] == MERMAID
    assert len(rig.cloud.requests) == 1
    assert rig.checkpoint_count(f"t-{reason}") >= 1


@pytest.mark.parametrize(
    ("reason", "fault"),
    [
        ("server_down", {}),
        ("not_installed", {"installed": False}),
        ("load_failed", {"load_error": "unable to load full model on GPU"}),
        ("timeout", {"stall_after": 1}),
        ("generation_error", {"error_after": 1}),
    ],
)
async def test_force_local_never_calls_the_cloud_and_says_what_failed(
    rig: Rig, reason: str, fault: dict[str, object]
) -> None:
    rig.ollama.update_model(MERMAID, **fault)
    config = rig.config(ollama_up=reason != "server_down", timeout=0.8)
    response = await rig.ask(config, "ERD for a blog", force_local=True, thread="t-force")
    assert not response.ok and response.content == ""
    assert response.fallback_reason == reason and not response.is_fallback
    assert response.error_message is not None
    assert f"({reason}:" in response.error_message
    assert "no cloud model was tried" in response.error_message
    assert rig.cloud.requests == []
    (row,) = rig.usage_rows()
    assert (row["status"], row["fallback_reason"], row["location"]) == ("failed", reason, "local")
    assert rig.checkpoint_count("t-force") >= 1


async def test_force_local_with_invalid_output_delivers_it_marked_invalid(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, reply="```mermaid\nA --> B\n```")
    response = await rig.ask(rig.config(), "ERD for a blog", force_local=True)
    assert not response.ok and not response.valid
    assert response.content == "A --> B"
    assert response.fallback_reason == "invalid_output"
    assert response.error_message and response.error_message.startswith("Artifact is invalid:")
    assert rig.cloud.requests == []
    assert rig.usage_rows()[0]["status"] == "invalid"


async def test_repair_turns_an_invalid_reply_into_a_valid_one_locally(rig: Rig) -> None:
    good = rig.ollama.model(MERMAID).reply
    rig.ollama.update_model(MERMAID, replies=["Here you go: users -> posts", good])
    response = await rig.ask(rig.config(repair_attempts=1), "ERD for a blog")
    assert response.ok and not response.is_fallback
    assert response.attempts == 2
    assert any(
        s.startswith("Mermaid invalid (") and s.endswith(" - asking mermaid-mistral to repair (1/1)")
        for s in rig.statuses()
    )
    repair_request = [r for r in rig.ollama.requests if r.path == "/api/chat"][-1]
    last_message = repair_request.body["messages"][-1]["content"]
    assert "not valid" in last_message
    assert rig.cloud.requests == []


async def test_cloud_failure_after_local_failure_names_both(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, installed=False)
    rig.cloud.configure(status_error=(500, "upstream exploded"))
    response = await rig.ask(rig.config(), "ERD for a blog")
    assert not response.ok and response.content == ""
    assert response.fallback_reason == "not_installed"
    assert response.error_message and "not installed" in response.error_message
    assert (
        "Cloud fallback failed too" in response.error_message
        and "upstream exploded" in response.error_message
    )
    (row,) = rig.usage_rows()
    assert row["status"] == "failed" and row["fallback_reason"] == "not_installed"


async def test_no_ollama_and_no_keys_names_both(rig: Rig) -> None:
    response = await rig.ask(rig.config(ollama_up=False, with_cloud=False), "ERD for a blog")
    assert not response.ok
    message = response.error_message or ""
    assert "server_down" in message and "Ollama is not reachable" in message
    assert "GOOGLE_API_KEY" in message and "OPENAI_API_KEY" in message


async def test_concurrent_requests_share_one_load(rig: Rig) -> None:
    import asyncio

    from graph.router import ModelRouter

    rig.ollama.update_model(MERMAID, load_delay=0.4)
    async with ModelRouter(rig.config()) as router:
        responses = await asyncio.gather(*(rig.ask_with(router, f"ERD #{i}") for i in range(6)))
    assert all(r.ok and not r.is_fallback for r in responses)
    assert rig.ollama.load_count(MERMAID) == 1
    assert len(rig.usage_rows()) == 6


async def test_follow_up_revises_the_previous_artifact_with_the_same_model(rig: Rig) -> None:
    config = rig.config()
    first = await rig.ask(config, "ERD for a blog with users and posts", task="erd", thread="conv")
    second = await rig.ask(config, "now add a TAGS table", task=None, thread="conv")
    assert first.ok and second.ok
    assert second.task_type == "erd" and second.model_used == MERMAID
    chat = [r for r in rig.ollama.requests if r.path == "/api/chat"]
    sent = "\n".join(m["content"] for m in chat[-1].body["messages"])
    assert first.content in sent and "now add a TAGS table" in sent
    assert any("continuing the thread's erd request" in s for s in rig.statuses())


async def test_api_key_never_reaches_checkpoints_stats_or_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.ollama.update_model(MERMAID, installed=False)
    # The cloud echoes the key back in its error, as some providers do.
    rig.cloud.configure(status_error=(401, f"Incorrect API key provided: {OPENAI_KEY}"))
    response = await rig.ask(rig.config(), "ERD for a blog", thread="t-secret")
    assert not response.ok and "Incorrect API key" in (response.error_message or "")
    assert OPENAI_KEY not in (response.error_message or "")
    for name in ("checkpoints.db", "usage.db"):
        for path in rig.data_dir.glob(f"{name}*"):
            assert OPENAI_KEY.encode() not in path.read_bytes(), path
            assert OPENAI_KEY[: len(OPENAI_KEY) // 2].encode() not in path.read_bytes(), path
    assert OPENAI_KEY not in caplog.text
    assert len(rig.cloud.requests) == 1  # a bad key is not retried


async def test_stats_count_every_outcome(rig: Rig) -> None:
    from graph.router import ModelRouter

    config = rig.config()
    async with ModelRouter(config) as router:
        await rig.ask_with(router, "ERD one")
        await rig.ask_with(router, "ERD two")
        rig.ollama.update_model(MERMAID, installed=False)
        await rig.ask_with(router, "ERD three")
        await rig.ask_with(router, "ERD four", force_local=True)
        stats = {s["model"]: s for s in router.get_stats()}
    # The local model is credited with every request that tried it, by its own outcome; only the
    # request the cloud answered is its fallback (the force-local failure fell back nowhere).
    local = stats[MERMAID]
    assert (local["total"], local["successes"], local["failures"], local["fallbacks"]) == (4, 2, 2, 1)
    assert local["fallback_rate"] == 0.25
    cloud = stats["gpt-4o-mini"]
    assert (cloud["total"], cloud["successes"], cloud["fallbacks"]) == (1, 1, 1)


async def test_checkpoint_holds_the_conversation_and_no_client(rig: Rig) -> None:
    from graph.router import ModelRouter

    async with ModelRouter(rig.config()) as router:
        await rig.ask_with(router, "ERD for a blog", thread="t-state")
        snapshot = await router.graph.aget_state({"configurable": {"thread_id": "t-state"}})
    assert set(snapshot.values) <= set(Stored.__annotations__)  # the run's fields in one channel
    assert snapshot.values["run"]["response"]["model_used"] == MERMAID
    values = flat(snapshot.values)
    assert "messages" not in values  # nothing grows with the thread (see test_thread_state_is_bounded)
    assert values["last_artifact"].startswith("erDiagram") and values["last_task"] == "erd"
    assert (
        values["task_type"] is None and values["force_local"] is None
    )  # inputs do not leak into the next turn
    assert [a["source"] for a in values["attempts"]] == ["local"]
    import json

    json.dumps(values)  # plain JSON: no client object, no key


async def test_a_crashing_node_still_leaves_checkpoint_and_usage_row(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    from graph.router import ModelRouter
    from services import Services
    from validators import Validators

    class ExplodingValidators(Validators):
        async def check(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            raise RuntimeError("validator bug")

    config = rig.config()
    services = Services.create(config)
    services.validators = ExplodingValidators()
    try:
        async with ModelRouter(config, services=services) as router:
            response = await rig.ask_with(router, "ERD for a blog", thread="t-crash")
    finally:
        await services.aclose()
    assert not response.ok
    assert response.error_message and "internal error (RuntimeError: validator bug)" in response.error_message
    assert "Traceback" not in response.error_message
    assert "validator bug" in caplog.text  # the stack trace goes to the log
    (row,) = rig.usage_rows()
    assert row["status"] == "failed" and row["thread_id"] == "t-crash"
    assert rig.checkpoint_count("t-crash") >= 1


async def test_missing_model_is_pulled_where_the_config_allows(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, installed=False)
    response = await rig.ask(rig.config(allow_pull=True), "ERD for a blog")
    assert response.ok and not response.is_fallback and response.model_used == MERMAID
    statuses = rig.statuses()
    assert f"{MERMAID} is not installed: pulling it" in statuses
    assert any(s.startswith(f"Pulling {MERMAID}: success") for s in statuses)
    assert rig.cloud.requests == []
