"""validate_output: extract the artifact from the reply and check it with its task's validator.

It also owns the decision that follows a verdict (``next_step``): the graph's edge and this
node's status line ("... - asking mermaid-mistral to repair (1/1)") must never disagree.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from config.schema import AppConfig
from nodes.events import emit_status, writer_for
from nodes.messages import is_question
from nodes.state import State
from services import Context, services_for
from validators import Verdict

NODE = "validate_output"
NextStep = Literal["finalize", "local_generate", "cloud_fallback"]
_LABELS = {
    "mermaid": "Mermaid syntax",
    "html": "HTML",
    "code": "code syntax",
    "documentation": "Markdown",
    "jira": "JIRA task schema",
}
_NAMES = {
    "mermaid": "Mermaid",
    "html": "HTML",
    "code": "Code",
    "documentation": "Markdown",
    "jira": "JIRA tasks",
}


def cloud_providers_left(state: State) -> list[str]:
    """Allowed cloud providers not tried yet in this request, in order."""
    tried = state.get("cloud_tried", [])
    return [p for p in state.get("cloud_providers", []) if p not in tried]


def cloud_repair_due(state: State) -> bool:
    """The cloud's latest reply is invalid and its provider may still be asked to repair it."""
    validation = state.get("validation") or {}
    return (
        state.get("reply_source") == "cloud"
        and validation.get("valid") is False
        and state.get("cloud_repairs_left", 0) > 0
    )


def next_step(state: State) -> NextStep:
    """After a verdict: finish when valid; else repair with the same model, then the next provider."""
    validation = state.get("validation")
    if validation is None:
        raise ValueError("route_after_validate reached without a validation verdict")
    if validation.get("valid"):
        return "finalize"
    if validation.get("checked") is False:  # no repair or other model can make it checkable
        return "finalize"
    if state.get("reply_source") == "local" and state.get("repairs_left", 0) > 0:
        return "local_generate"
    if cloud_repair_due(state):
        return "cloud_fallback"
    return "cloud_fallback" if cloud_providers_left(state) else "finalize"


def _invalid_line(config: AppConfig, state: State, verdict: Verdict, name: str) -> str:
    head = f"{name} invalid ({verdict.summary})"
    step = next_step(state)
    if step == "local_generate":
        total = config.validation.repair_attempts
        done = total - state.get("repairs_left", 0) + 1
        return f"{head} - asking {state.get('model')} to repair ({done}/{total})"
    if step == "cloud_fallback" and cloud_repair_due(state):
        total = config.validation.cloud_repair_attempts
        done = total - state.get("cloud_repairs_left", 0) + 1
        return f"{head} - asking {state.get('reply_model')} to repair ({done}/{total})"
    if step == "cloud_fallback" and state.get("reply_source") == "cloud":
        return f"{head} - trying the next cloud provider"
    if step == "cloud_fallback":
        return f"{head} - trying the cloud"
    return f"{head} - no repair left"


async def validate_output(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Record the verdict on the latest reply; the edges decide repair, fallback or finish."""
    svc = await services_for(runtime.context)
    route = svc.config.route(state["task"])
    writer = writer_for(runtime)
    if is_question(state):
        return _answer(state, writer)
    emit_status(writer, NODE, f"Validating {_LABELS[route.validator]}")
    if not svc.validators.ready(route.validator):
        emit_status(writer, NODE, "Waiting for the Mermaid checker to finish starting (once per process)")
    verdict = await svc.validators.check(
        route.validator, state.get("reply") or "", expect_kind=route.expect_kind, request=state.get("prompt")
    )
    if state.get("reply_truncated"):
        verdict = verdict.truncated("done_reason: length")
    if verdict.warning:
        emit_status(writer, NODE, verdict.warning, level="warning")
    attempts = list(state.get("attempts", []))
    if attempts:
        attempts[-1] = {
            **attempts[-1],
            "valid": verdict.valid,
            "error": verdict.error,
            "checked": verdict.checked,
        }
    update: dict[str, Any] = {"validation": verdict.to_dict(), "attempts": attempts}
    name = (
        verdict.language.capitalize()
        if route.validator == "code" and verdict.language
        else _NAMES[route.validator]
    )
    if verdict.valid:
        emit_status(writer, NODE, f"{_LABELS[route.validator]} valid")
        if state.get("reply_source") == "local":
            # A repaired local answer is a local success: an earlier invalid reply left no fallback.
            update |= {"fallback_reason": None, "error": None}
        return {**update, "artifact": verdict.artifact}
    if not verdict.checked:
        emit_status(
            writer,
            NODE,
            f"{name} not checked ({verdict.summary}) - delivered unchecked",
            level="warning",
        )
        return {**update, "artifact": verdict.artifact or state.get("artifact")}
    # Keep the best invalid artifact: under force local it is what the user gets, marked invalid.
    update["artifact"] = verdict.artifact or state.get("artifact")
    if state.get("reply_source") == "local":
        # The verdict's error is reported with the artifact; this says what the model did.
        repairs = svc.config.validation.repair_attempts - state.get("repairs_left", 0)
        after = f" (still invalid after {repairs} repair{'s' * (repairs != 1)})" if repairs else ""
        update["fallback_reason"] = "invalid_output"
        update["error"] = f"{state.get('reply_model')} produced an invalid artifact{after}"
    updated = cast(State, {**state, **update})
    emit_status(writer, NODE, _invalid_line(svc.config, updated, verdict, name), level="warning")
    return update


def _answer(state: State, writer: StreamWriter) -> dict[str, Any]:
    """A question's reply is prose: delivered as text, never judged (or repaired) as an artifact.

    An empty reply is the one failure: it is invalid, so the cloud may still answer.
    """
    text = (state.get("reply") or "").strip()
    verdict = Verdict.ok(text) if text else Verdict.fail("", "empty answer")
    if state.get("reply_truncated"):
        emit_status(writer, NODE, "The answer was cut off at the model's length limit", level="warning")
    emit_status(writer, NODE, "Answer in prose: nothing to validate" if text else "The answer was empty")
    attempts = list(state.get("attempts", []))
    if attempts:
        attempts[-1] = {**attempts[-1], "valid": verdict.valid, "error": verdict.error}
    update: dict[str, Any] = {"validation": verdict.to_dict(), "attempts": attempts, "artifact": text or None}
    if text and state.get("reply_source") == "local":
        update |= {"fallback_reason": None, "error": None}
    elif not text and state.get("reply_source") == "local":
        update |= {
            "fallback_reason": "invalid_output",
            "error": f"{state.get('reply_model')} gave an empty answer",
        }
    return update
