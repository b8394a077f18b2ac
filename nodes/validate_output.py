"""validate_output: extract the artifact from the reply and check it with its task's validator."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes.events import emit_status
from nodes.state import State
from services import Context, services_for

NODE = "validate_output"
_LABELS = {
    "mermaid": "Mermaid syntax",
    "html": "HTML",
    "code": "code syntax",
    "documentation": "Markdown",
    "jira": "JIRA task schema",
}


async def validate_output(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Record the verdict on the latest reply; the edges decide repair, fallback or finish."""
    svc = await services_for(runtime.context)
    route = svc.config.route(state["task"])
    writer = runtime.stream_writer
    emit_status(writer, NODE, f"Validating {_LABELS[route.validator]}")
    verdict = await svc.validators.check(
        route.validator, state.get("reply") or "", expect_kind=route.expect_kind
    )
    attempts = list(state.get("attempts", []))
    if attempts:
        attempts[-1] = {**attempts[-1], "valid": verdict.valid, "error": verdict.error}
    update: dict[str, Any] = {"validation": verdict.to_dict(), "attempts": attempts}
    if verdict.valid:
        emit_status(writer, NODE, f"{_LABELS[route.validator]} valid")
        return {**update, "artifact": verdict.artifact}
    emit_status(writer, NODE, f"{_LABELS[route.validator]} invalid: {verdict.error}", level="warning")
    # Keep the best invalid artifact: under force local it is what the user gets, marked invalid.
    update["artifact"] = verdict.artifact or state.get("artifact")
    if state.get("reply_source") == "local":
        update["fallback_reason"] = "invalid_output"
        update["error"] = f"{state.get('reply_model')} produced an invalid artifact: {verdict.error}"
    return update
