"""finalize: build the ModelResponse, write one usage row, say how the request ended."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from nodes.events import Level, emit_status, hand_over, writer_for
from nodes.messages import is_question
from nodes.response import ModelResponse
from nodes.state import HISTORY_CHARS, HISTORY_TURNS, Attempt, HistoryTurn, State
from providers.errors import REASON_TEXT
from services import Context, services_for
from usage.errors import UsageStoreError
from usage.quality import QualityWarning
from usage.row import LocalOutcome, Status, UsageRow

log = logging.getLogger(__name__)

NODE = "finalize"


def explain_failure(state: State) -> str:
    """Why nothing valid was produced: the local failure, every model tried, why no cloud helped."""
    model = state.get("model", "the local model")
    reason = state.get("fallback_reason")
    parts = [f"Local model {model} failed ({reason}: {REASON_TEXT.get(reason or '', 'unknown')})."]
    if state.get("error"):
        error = str(state.get("error")).strip()
        parts.append(error if error.endswith(".") else f"{error}.")
    tried = attempts_summary(state.get("attempts") or [])
    if tried:
        parts.append(f"Tried: {tried}.")
    blocked = state.get("cloud_blocked")
    if blocked:
        parts.append(f"No cloud fallback: {blocked}.")
    if state.get("artifact"):
        shown = state.get("reply_model") or model
        parts.append(f"The artifact shown is {shown}'s, as it wrote it.")
    return " ".join(parts)


_TIMES = {1: "", 2: " twice"}


def attempts_summary(attempts: Sequence[Attempt]) -> str:
    """Each model tried and what became of it, in order: "codellama: invalid twice (1 repair); ..."."""
    by_model: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_model.setdefault(attempt["model"], []).append(attempt)
    return "; ".join(f"{model}: {_what_became(tries)}" for model, tries in by_model.items())


def _what_became(tries: list[Attempt]) -> str:
    outcomes: list[str] = []  # consecutive equal outcomes are counted, not repeated
    counts: list[int] = []
    for attempt in tries:
        if not attempt["ok"]:
            outcome = (
                f"{attempt['reason'] or 'failed'} ({REASON_TEXT.get(attempt['reason'] or '', 'failed')})"
            )
        elif attempt["valid"] is None:
            outcome = "answered"
        else:
            outcome = "valid" if attempt["valid"] else "invalid"
        if outcomes and outcomes[-1] == outcome:
            counts[-1] += 1
        else:
            outcomes.append(outcome)
            counts.append(1)
    text = ", then ".join(
        f"{outcome}{_TIMES.get(count, f' {count} times')}"
        for outcome, count in zip(outcomes, counts, strict=True)
    )
    repairs = sum(1 for attempt in tries if attempt["repair"])
    return f"{text} ({repairs} repair{'s' if repairs > 1 else ''})" if repairs else text


def build_response(state: State, thread_id: str | None) -> ModelResponse:
    """The ModelResponse for the state a request ended in."""
    validation = state.get("validation") or {}
    content = state.get("artifact") or ""
    valid = bool(validation.get("valid")) and state.get("artifact") is not None
    checked = not (content and validation.get("checked") is False)
    if valid:
        error = None
    elif not checked:
        error = (
            f"Artifact was not checked: {validation.get('error')}. It is delivered as the model "
            "wrote it; check it yourself before use."
        )
    elif content:
        error = f"Artifact is invalid: {validation.get('error')}. {explain_failure(state)}"
    else:
        error = explain_failure(state)
    source = state.get("reply_source")
    return ModelResponse(
        content=content,
        model_used=(state.get("reply_model") if content else None) or state.get("model", ""),
        is_fallback=source == "cloud" and bool(content),
        generation_time=round(time.time() - state.get("started_at", time.time()), 3),
        tokens_used=(state.get("input_tokens") or 0) + (state.get("output_tokens") or 0),
        error_message=error,
        fallback_reason=state.get("fallback_reason"),
        task_type=state.get("task", ""),
        provider=(state.get("reply_provider") if content else None) or "ollama",
        valid=valid,
        validation_error=None if valid else validation.get("error"),
        attempts=len(state.get("attempts", [])),
        thread_id=thread_id,
        checked=checked,
        prose=is_question(state),
        language=validation.get("language") if content else None,
    )


def local_outcome(state: State) -> LocalOutcome | None:
    """What became of the local model's part: its last attempt decides (a repair counts as its own)."""
    local = [a for a in state.get("attempts", []) if a["source"] == "local"]
    if not local:
        return None
    last = local[-1]
    if last.get("valid"):
        return "repaired" if last["repair"] else "valid"
    if last.get("checked") is False:
        return "unchecked"
    if last["ok"] and last.get("valid") is False:
        return "invalid"
    return "failed"


def _status(response: ModelResponse) -> Status:
    if response.ok:
        return "success"
    if not response.content:
        return "failed"
    return "invalid" if response.checked else "unchecked"


def usage_row(state: State, response: ModelResponse) -> UsageRow:
    """One usage row for the request, crediting the local model and the cloud model separately."""
    validation = state.get("validation")
    attempts = state.get("attempts", [])
    cloud_answered = response.is_fallback
    return UsageRow(
        thread_id=response.thread_id or "",
        task_type=response.task_type,
        model=response.model_used,
        provider=response.provider,
        location="cloud" if cloud_answered else "local",
        status=_status(response),
        fallback_reason=response.fallback_reason,
        local_model=state.get("model"),
        load_time_s=state.get("load_s"),
        first_token_s=state.get("first_token_s"),
        generation_time_s=response.generation_time,
        input_tokens=state.get("input_tokens"),
        output_tokens=state.get("output_tokens"),
        # A question's answer is prose that no validator checked: "valid" would claim a check.
        validation=None
        if validation is None or is_question(state)
        else ("valid" if validation.get("valid") else "invalid"),
        validation_error=response.validation_error,
        attempts=response.attempts,
        error_message=response.error_message,
        local_outcome=local_outcome(state),
        cloud_model=response.model_used if cloud_answered else None,
        cloud_provider=response.provider if cloud_answered else None,
        cloud_attempts=sum(1 for a in attempts if a["source"] == "cloud"),
        cloud_input_tokens=state.get("cloud_input_tokens"),
        cloud_output_tokens=state.get("cloud_output_tokens"),
    )


async def finalize(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Finish the request: response in state, its usage row completed, final status line."""
    svc = await services_for(runtime.context)
    thread_id = get_config().get("configurable", {}).get("thread_id")
    response = build_response(state, thread_id)
    row = usage_row(state, response)
    # The local model's reply was judged: say so when its recent pass rate for this task is low.
    judged = bool(row.local_model) and row.local_outcome in ("valid", "repaired", "invalid")
    quality = svc.config.routing.quality

    def record() -> QualityWarning | None:  # both at once: on the loop, or one trip to a thread
        svc.usage.finish_sync(state.get("usage_id"), row)
        return svc.usage.low_quality(row.local_model or "", row.task_type, quality) if judged else None

    try:
        low = await svc.usage.soon(record)
        if low is not None:
            emit_status(writer_for(runtime), NODE, low.message, level="warning", model=row.local_model)
    except UsageStoreError:  # statistics must never cost the user the artifact
        log.exception("could not record usage for thread %s", thread_id)
    emit_status(writer_for(runtime), NODE, final_line(response), level=_level(response))
    delivered = response.to_dict()
    hand_over(delivered)
    update: dict[str, Any] = {
        "response": delivered,
        "last_task": response.task_type,
        # Inputs are per request: a later request on this thread must not inherit them.
        "task_type": None,
        "force_local": None,
        "latency_budget_s": None,
        **remember(state, response),
    }
    return update


def remember(state: State, response: ModelResponse) -> dict[str, Any]:
    """The thread's memory after this turn: its artifact under its task type, the turn in history.

    Both stay bounded: one artifact per task type (replaced, never appended) and the last
    HISTORY_TURNS turns, each shortened. A question's answer is history, not an artifact.
    """
    turn = state.get("turn") or 0
    decision = state.get("turn_decision")
    question = is_question(state)
    update: dict[str, Any] = {}
    if response.content and not question:
        artifacts = dict(state.get("artifacts") or {})
        artifacts[response.task_type] = {
            "content": response.content,
            "turn": turn,
            "model": response.model_used,
            "request": _shorten(state["prompt"]),
        }
        update |= {"artifacts": artifacts, "last_artifact": response.content}
    if question:
        answer: str | None = _shorten(response.content) if response.content else "[no answer was produced]"
    else:
        answer = None if response.content else "[no artifact was produced]"
    entry: HistoryTurn = {
        "turn": turn,
        "prompt": _shorten(state["prompt"]),
        "kind": decision["kind"] if decision else "new",
        "task": response.task_type,
        "answer": answer,
    }
    update["history"] = [*(state.get("history") or []), entry][-HISTORY_TURNS:]
    return update


def _shorten(text: str) -> str:
    text = text.strip()
    return text if len(text) <= HISTORY_CHARS else text[: HISTORY_CHARS - 1] + "\u2026"


def final_line(response: ModelResponse) -> str:
    """The seed's closing line: where the artifact came from, or what failed."""
    if response.ok and not response.is_fallback:
        return f"Generated using {response.model_used} (local) in {response.generation_time:.1f} s"
    if response.ok:
        return (
            f"Local model unavailable ({response.fallback_reason}). "
            f"Used {response.model_used} (cloud) instead."
        )
    if not response.checked:
        where = "cloud" if response.is_fallback else "local"
        return f"Generated using {response.model_used} ({where}), not checked: {response.validation_error}"
    return response.error_message or "No artifact was produced."


def _level(response: ModelResponse) -> Level:
    if not response.checked:
        return "warning"
    if response.ok:
        return "warning" if response.is_fallback else "info"
    return "error"
