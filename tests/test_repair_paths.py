"""Repair loops through the graph: real validators, the Ollama and OpenAI-compatible emulators."""

from __future__ import annotations

import json
from typing import Any

from graph.router import ModelRouter
from graph.storage import flat
from tests.conftest import MERMAID, Rig
from tests.emulators._ollama_defaults import MERMAID_REPLY
from validators import JiraTaskList

LLAMA = "llama3:8b-instruct-q4_K_M"
NO_LABEL = "```mermaid\nerDiagram\n  USER ||--o{ POST\n```"  # ER relation without its label
NO_LABEL_ERROR = "line 2: unexpected end of line"
ARROW = "Here it is:\n```mermaid\nerDiagram\n  USER ||--o{ POST : writes\n  POST -> COMMENT\n```"
FLOWCHART = "```mermaid\nflowchart TD\n  USER --> POST\n```"
MISMATCH = "expected an er diagram (erDiagram), got flowchart"


async def _ask(rig: Rig, router: ModelRouter, thread: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    response = await rig.ask_with(router, "ERD for a blog", thread=thread, **kwargs)
    snapshot = await router.graph.aget_state({"configurable": {"thread_id": thread}})
    return response, dict(flat(snapshot.values))


def _chat_requests(rig: Rig) -> list[Any]:
    return [r for r in rig.ollama.requests if r.path == "/api/chat"]


async def test_invalid_then_valid_repairs_locally_quoting_the_parsers_error(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, replies=[NO_LABEL, MERMAID_REPLY])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response, state = await _ask(rig, router, "t-repair")
    assert response.ok and not response.is_fallback and response.attempts == 2
    assert f"Mermaid invalid ({NO_LABEL_ERROR}) - asking {MERMAID} to repair (1/1)" in rig.statuses()
    repair = _chat_requests(rig)[-1].body["messages"]
    assert [m["role"] for m in repair] == ["system", "user"]
    assert "The request was: ERD for a blog" in repair[-1]["content"]
    assert (
        f"the official Mermaid parser rejected it:\n\n{NO_LABEL_ERROR}\n  2 |   USER ||--o{{ POST"
        in repair[-1]["content"]
    )
    assert "```mermaid\nerDiagram\n  USER ||--o{ POST\n```" in repair[-1]["content"]  # the broken artifact
    first, second = state["attempts"]
    assert (first["valid"], first["repair"], second["valid"], second["repair"]) == (False, False, True, True)
    assert first["error"].startswith(NO_LABEL_ERROR)
    assert rig.cloud.requests == []
    (row,) = rig.usage_rows()
    assert (row["status"], row["attempts"], row["validation"], row["location"]) == (
        "success",
        2,
        "valid",
        "local",
    )


async def test_invalid_twice_goes_to_the_cloud_whose_output_is_validated_too(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, replies=[ARROW, NO_LABEL])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response, state = await _ask(rig, router, "t-cloud")
    assert response.ok and response.is_fallback and response.fallback_reason == "invalid_output"
    assert response.model_used == "gpt-4o-mini" and response.attempts == 3
    statuses = rig.statuses()
    assert f"Mermaid invalid (line 3: unexpected '>') - asking {MERMAID} to repair (1/1)" in statuses
    assert f"Mermaid invalid ({NO_LABEL_ERROR}) - trying the cloud" in statuses
    assert statuses.count("Validating Mermaid syntax") == 3
    assert [(a["source"], a["valid"]) for a in state["attempts"]] == [
        ("local", False),
        ("local", False),
        ("cloud", True),
    ]
    (row,) = rig.usage_rows()
    assert (row["location"], row["attempts"], row["validation"], row["fallback_reason"]) == (
        "cloud",
        3,
        "valid",
        "invalid_output",
    )


async def test_an_invalid_cloud_reply_gets_its_own_repair(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, reply=FLOWCHART)
    rig.cloud.configure(replies=[FLOWCHART, MERMAID_REPLY])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response, state = await _ask(rig, router, "t-cloud-repair")
    assert response.ok and response.is_fallback and response.attempts == 4
    assert f"Mermaid invalid ({MISMATCH}) - asking gpt-4o-mini to repair (1/1)" in rig.statuses()
    repair = rig.cloud.requests[-1].body["messages"]
    assert [m["role"] for m in repair] == ["system", "user"] and MISMATCH in repair[-1]["content"]
    assert [(a["source"], a["repair"], a["valid"]) for a in state["attempts"]] == [
        ("local", False, False),
        ("local", True, False),
        ("cloud", False, False),
        ("cloud", True, True),
    ]


async def test_when_every_repair_fails_the_best_artifact_is_delivered_marked_invalid(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, reply=NO_LABEL)
    rig.cloud.configure(reply=FLOWCHART)
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response, state = await _ask(rig, router, "t-all-bad")
    assert not response.ok and not response.valid and response.attempts == 4
    assert response.content == "flowchart TD\n  USER --> POST"  # the latest artifact, not silently dropped
    assert response.error_message is not None and response.error_message.startswith(
        f"Artifact is invalid: {MISMATCH}"
    )
    assert rig.statuses()[-2] == f"Mermaid invalid ({MISMATCH}) - no repair left"
    # The whole story: every model tried and what each did, and whose artifact is shown.
    assert (
        f"Tried: {MERMAID}: invalid twice (1 repair); gpt-4o-mini: invalid twice (1 repair)."
        in response.error_message
    )
    assert response.error_message.endswith("The artifact shown is gpt-4o-mini's, as it wrote it.")
    assert len(rig.cloud.requests) == 2
    (row,) = rig.usage_rows()
    assert (row["status"], row["attempts"], row["validation"]) == ("invalid", 4, "invalid")
    assert row["validation_error"] == MISMATCH


async def test_force_local_delivers_the_invalid_artifact_with_the_parsers_error(rig: Rig) -> None:
    rig.ollama.update_model(MERMAID, replies=[ARROW, NO_LABEL])
    async with ModelRouter(rig.config(repair_attempts=1)) as router:
        response, state = await _ask(rig, router, "t-force", force_local=True)
    assert not response.ok and response.attempts == 2
    assert response.content == "erDiagram\n  USER ||--o{ POST"
    assert response.validation_error is not None and response.validation_error.startswith(NO_LABEL_ERROR)
    assert response.error_message is not None and NO_LABEL_ERROR in response.error_message
    assert f"Mermaid invalid ({NO_LABEL_ERROR}) - no repair left" in rig.statuses()
    assert rig.cloud.requests == []
    assert rig.usage_rows()[0]["status"] == "invalid"


async def test_jira_tasks_are_asked_for_with_structured_output_locally(rig: Rig) -> None:
    async with ModelRouter(rig.config()) as router:
        response = await rig.ask_with(router, "JIRA tasks for password reset", task="jira")
    assert response.ok, response.error_message
    (chat,) = _chat_requests(rig)
    assert chat.body["format"] == JiraTaskList.inline_schema()
    assert "$defs" not in json.dumps(chat.body["format"])


async def test_jira_tasks_use_the_providers_structured_output_in_the_cloud(rig: Rig) -> None:
    rig.ollama.update_model(LLAMA, installed=False)
    tasks = {"tasks": [{"summary": "Reset form", "description": "Ask for the email", "story_points": 2}]}
    rig.cloud.configure(reply=json.dumps(tasks))
    async with ModelRouter(rig.config()) as router:
        response = await rig.ask_with(router, "JIRA tasks for password reset", task="jira")
    assert response.ok and response.is_fallback, response.error_message
    assert json.loads(response.content) == [{**tasks["tasks"][0], "acceptance_criteria": []}]
    (request,) = rig.cloud.requests
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["properties"]["tasks"]["type"] == "array"


async def test_without_node_diagrams_are_checked_by_header_and_the_user_is_warned(rig: Rig) -> None:
    config = rig.config()
    config = config.model_copy(
        update={"validation": config.validation.model_copy(update={"node": "/nonexistent/bin/node"})}
    )
    async with ModelRouter(config) as router:
        response = await rig.ask_with(router, "ERD for a blog")
    assert response.ok
    warnings = [e["message"] for e in rig.events if e["kind"] == "status" and e["level"] == "warning"]
    assert any(w.startswith("Mermaid parser unavailable (Node.js not found") for w in warnings)
