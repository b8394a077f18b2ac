"""classify_task: decide the task type (explicit > keywords > carried over > default)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from config.schema import AppConfig
from nodes.events import emit_status
from nodes.prompt_check import check_prompt
from nodes.state import ClassifiedBy, State
from services import Context, Services, services_for
from usage.errors import UsageStoreError
from usage.row import UsageRow

log = logging.getLogger(__name__)


def keyword_scores(config: AppConfig, prompt: str) -> dict[str, int]:
    """Characters of each task's keywords found in the prompt (whole words, any case).

    Longer matches are more specific: "entity relationship diagram" is an ERD even though
    it also says "diagram".
    """
    text = prompt.lower()
    scores: dict[str, int] = {}
    for name, route in config.routing.tasks.items():
        matched = [kw for kw in route.keywords if re.search(rf"\b{re.escape(kw.lower())}\b", text)]
        if matched:
            scores[name] = sum(len(kw) for kw in matched)
    return scores


def classify(config: AppConfig, state: State) -> tuple[str, ClassifiedBy, float]:
    """The task type for this request, how it was decided and how sure we are."""
    explicit = state.get("task_type")
    if explicit and explicit in config.routing.tasks:
        return explicit, "explicit", 1.0
    scores = keyword_scores(config, state["prompt"])
    if scores:
        best = max(scores, key=lambda name: scores[name])  # ties: first in config order
        runner_up = max((v for k, v in scores.items() if k != best), default=0)
        return best, "keywords", round(min(0.95, 0.6 + 0.35 * (1 - runner_up / scores[best])), 2)
    last = state.get("last_task")
    if last and last in config.routing.tasks:
        return last, "carried_over", 0.6
    return config.routing.default_task, "default", 0.2


def cloud_policy(config: AppConfig, force_local: bool, available: tuple[str, ...], setup: str) -> str | None:
    """Why no cloud provider may serve this request, or None when some may."""
    if force_local:
        return "force local only is on, so no cloud model was tried"
    if not config.fallback.enabled:
        return f"cloud fallback is disabled (fallback.enabled in {config.source})"
    if not available:
        return f"no cloud provider is configured (set {setup})"
    return None


async def classify_task(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Resolve the task type, reset every per-request field, and open the request's usage row."""
    svc = await services_for(runtime.context)
    config = svc.config
    # ModelRouter checked already; a Studio run reaches the graph directly (its error is fine there).
    check_prompt(state.get("prompt"), config.routing.max_prompt_bytes)
    task, how, confidence = classify(config, state)
    force_local = state.get("force_local")
    force_local = config.fallback.force_local_default if force_local is None else bool(force_local)
    available = svc.cloud.available()
    blocked = cloud_policy(config, force_local, available, svc.cloud.missing_setup())
    route = config.route(task)
    emit_status(
        runtime.stream_writer,
        "classify_task",
        f"Task: {task} ({_how_text(how, state)}, confidence {confidence:.2f}) -> {route.model}",
        model=route.model,
    )
    started = time.time()
    return {
        "task": task,
        "classified_by": how,
        "confidence": confidence,
        "model": route.model,
        "model_status": "unknown",
        "force_local_effective": force_local,
        "cloud_providers": [] if blocked else list(available),
        "cloud_blocked": blocked,
        "cloud_tried": [],
        "reply": None,
        "reply_source": None,
        "reply_provider": None,
        "reply_model": None,
        "reply_truncated": None,
        "artifact": None,
        "validation": None,
        "repairs_left": config.validation.repair_attempts,
        "attempts": [],
        "fallback_reason": None,
        "error": None,
        "started_at": started,
        "load_s": None,
        "first_token_s": None,
        "input_tokens": None,
        "output_tokens": None,
        "cloud_input_tokens": None,
        "cloud_output_tokens": None,
        "response": None,
        "usage_id": await _start_usage_row(svc, task, route.model),
    }


async def _start_usage_row(svc: Services, task: str, model: str) -> int | None:
    """Insert the request's row as "interrupted": a process killed mid-request leaves exactly this.

    finalize (or the router's crash path) completes it. None when it cannot be written: finalize
    then inserts the finished row instead, and statistics never cost the user the artifact.
    """
    thread_id = str(get_config().get("configurable", {}).get("thread_id") or "")
    row = UsageRow(
        thread_id=thread_id,
        task_type=task,
        model=model,
        provider="ollama",
        location="local",
        status="interrupted",
        fallback_reason=None,
        local_model=model,
        load_time_s=None,
        first_token_s=None,
        generation_time_s=None,
        input_tokens=None,
        output_tokens=None,
        validation=None,
        validation_error=None,
        attempts=0,
        error_message=None,
    )
    try:
        return await svc.usage.record(row)
    except UsageStoreError:
        log.exception("could not record the start of a request on thread %s", thread_id)
        return None


def _how_text(how: ClassifiedBy, state: State) -> str:
    return {
        "explicit": "chosen explicitly",
        "keywords": "matched keywords",
        "carried_over": f"continuing the thread's {state.get('last_task')} request",
        "default": "no keyword matched; default task",
    }[how]
