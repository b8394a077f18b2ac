"""classify_task: decide the task type (explicit > keywords > carried over > default)."""

from __future__ import annotations

import re
import time
from typing import Any

from langgraph.runtime import Runtime

from config.schema import AppConfig
from nodes.events import emit_status
from nodes.state import ClassifiedBy, State
from services import Context, services_for


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
    """Resolve the task type and reset every per-request field of the thread's state."""
    svc = await services_for(runtime.context)
    config = svc.config
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
        "started_at": time.time(),
        "load_s": None,
        "first_token_s": None,
        "input_tokens": None,
        "output_tokens": None,
        "response": None,
    }


def _how_text(how: ClassifiedBy, state: State) -> str:
    return {
        "explicit": "chosen explicitly",
        "keywords": "matched keywords",
        "carried_over": f"continuing the thread's {state.get('last_task')} request",
        "default": "no keyword matched; default task",
    }[how]
