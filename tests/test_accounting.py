"""Who gets credited with what (issue 8): repairs, tokens, the local and the cloud model of a request."""

from __future__ import annotations

from typing import Any, cast

from graph.router import ModelRouter
from nodes.validate_output import next_step
from tests.conftest import MERMAID, Rig
from tests.emulators._ollama_defaults import MERMAID_REPLY
from tests.emulators._text import count_tokens
from ui.render import stats_table

NO_LABEL = "```mermaid\nerDiagram\n  USER ||--o{ POST\n```"
ARROW = "Here it is:\n```mermaid\nerDiagram\n  USER ||--o{ POST : writes\n  POST -> COMMENT\n```"
CODELLAMA = "codellama:13b-instruct-q4_K_M"
COBOL = "```cobol\nIDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\n```"


async def _stats(rig: Rig, router: ModelRouter) -> dict[str, dict[str, Any]]:
    return {s["model"]: s for s in router.get_stats()}


async def test_a_repaired_local_answer_is_a_local_success_not_a_fallback(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, replies=[NO_LABEL, MERMAID_REPLY])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response = await rig.ask_with(router, "ERD for a blog")
        stats = await _stats(rig, router)
    assert response.ok and not response.is_fallback
    assert response.fallback_reason is None and response.error_message is None
    (row,) = rig.usage_rows()
    assert (row["status"], row["local_outcome"], row["fallback_reason"]) == ("success", "repaired", None)
    assert (row["cloud_model"], row["cloud_attempts"]) == (None, 0)
    local = stats[MERMAID]
    assert (local["successes"], local["repaired"], local["fallbacks"], local["fallback_rate"]) == (1, 1, 0, 0)
    assert set(stats) == {MERMAID}
    header, _, line = stats_table(list(stats.values())).splitlines()
    assert header.split() == [
        "model",
        "where",
        "requests",
        "success",
        "repaired",
        "fallback",
        "avg",
        "time",
        "tokens",
        "in",
        "tokens",
        "out",
    ]
    assert line.split()[2:6] == ["1", "100%", "1", "0%"]


async def test_tokens_add_up_across_every_attempt_local_repair_and_cloud(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, replies=[ARROW, NO_LABEL])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response = await rig.ask_with(router, "ERD for a blog")
    assert response.ok and response.is_fallback and response.attempts == 3
    (row,) = rig.usage_rows()
    local_out = count_tokens(ARROW) + count_tokens(NO_LABEL)  # what the emulator reports per reply
    cloud_out = count_tokens(MERMAID_REPLY)
    assert row["cloud_output_tokens"] == cloud_out and row["cloud_input_tokens"] > 0
    assert row["output_tokens"] == local_out + cloud_out
    assert row["input_tokens"] > row["cloud_input_tokens"]  # both local prompts are in the total too
    assert response.tokens_used == row["input_tokens"] + row["output_tokens"]


async def test_each_row_credits_the_local_model_tried_and_the_cloud_model_that_answered(rig: Rig) -> None:
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        rig.ollama.update_model(MERMAID, replies=[ARROW, NO_LABEL])  # two invalid replies: cloud answers
        await rig.ask_with(router, "ERD one")
        rig.ollama.update_model(MERMAID, replies=[ARROW, NO_LABEL])  # the same, with the cloud forbidden
        await rig.ask_with(router, "ERD two", force_local=True)
        rig.ollama.update_model(MERMAID, installed=False)
        await rig.ask_with(router, "ERD three", force_local=True)  # nothing falls back
        stats = await _stats(rig, router)
    to_cloud, invalid_local, force_failed = rig.usage_rows()
    assert (to_cloud["local_model"], to_cloud["local_outcome"], to_cloud["fallback_reason"]) == (
        MERMAID,
        "invalid",
        "invalid_output",
    )
    assert (to_cloud["cloud_model"], to_cloud["cloud_provider"], to_cloud["cloud_attempts"]) == (
        "gpt-4o-mini",
        "openai",
        1,
    )
    assert (invalid_local["status"], invalid_local["local_outcome"], invalid_local["cloud_model"]) == (
        "invalid",
        "invalid",
        None,
    )
    assert (force_failed["status"], force_failed["local_outcome"], force_failed["fallback_reason"]) == (
        "failed",
        "failed",
        "not_installed",
    )
    assert force_failed["cloud_attempts"] == 0
    local = stats[MERMAID]
    assert (local["total"], local["successes"], local["invalid"], local["failures"]) == (3, 0, 2, 1)
    assert (local["fallbacks"], local["success_rate"]) == (1, 0.0)
    cloud = stats["gpt-4o-mini"]
    assert (cloud["location"], cloud["total"], cloud["successes"], cloud["fallbacks"]) == ("cloud", 1, 1, 1)
    assert cloud["output_tokens"] == count_tokens(MERMAID_REPLY)
    assert local["output_tokens"] == 2 * (count_tokens(ARROW) + count_tokens(NO_LABEL))


async def test_a_cloud_failure_after_a_local_one_is_a_fallback_answered_by_no_cloud_model(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, installed=False)
    rig.cloud.configure(status_error=(500, "upstream exploded"))
    async with ModelRouter(rig.config()) as router:
        await rig.ask_with(router, "ERD for a blog")
        stats = await _stats(rig, router)
    (row,) = rig.usage_rows()
    assert (row["status"], row["local_outcome"], row["cloud_model"], row["cloud_attempts"]) == (
        "failed",
        "failed",
        None,
        1,
    )
    assert stats[MERMAID]["fallbacks"] == 1 and set(stats) == {MERMAID}


def test_an_unchecked_verdict_goes_straight_to_finalize() -> None:
    unchecked = {"valid": False, "checked": False, "error": "no cobol parser installed", "artifact": "X"}
    state: Any = {
        "validation": unchecked,
        "reply_source": "local",
        "repairs_left": 1,
        "cloud_providers": ["openai"],
    }
    assert next_step(state) == "finalize"
    assert next_step(cast(Any, {**state, "validation": {**unchecked, "checked": True}})) == "local_generate"


async def test_code_no_parser_can_check_is_delivered_unchecked_never_repaired_nor_sent_to_the_cloud(
    rig: Rig,
) -> None:
    rig.ollama.update_model(CODELLAMA, reply=COBOL)
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response = await rig.ask_with(router, "a hello world program", task="code")
        stats = await _stats(rig, router)
    assert response.content.startswith("IDENTIFICATION DIVISION.")
    assert not response.ok and not response.checked and not response.is_fallback
    assert response.error_message is not None and "not checked" in response.error_message
    assert response.fallback_reason is None
    assert len([r for r in rig.ollama.requests if r.path == "/api/chat"]) == 1  # no repair
    assert rig.cloud.requests == []
    (row,) = rig.usage_rows()
    assert (row["status"], row["local_outcome"]) == ("unchecked", "unchecked")
    local = stats[CODELLAMA]
    assert (local["successes"], local["unchecked"], local["fallbacks"]) == (0, 1, 0)
