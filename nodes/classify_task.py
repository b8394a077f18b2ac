"""classify_task: the task type (understanding.classifier) and what the turn does (understanding.turns)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from config.schema import AppConfig
from nodes.events import emit_status, writer_for
from nodes.prompt_check import check_prompt
from nodes.state import ClassifiedBy, State
from services import Context, Services, services_for
from understanding.turns import DECIDED_LAYERS, TurnDecision, decide_with, normalise, without_mentions
from understanding.types import CARRIED_OVER_CONFIDENCE, Classification
from usage.errors import UsageStoreError
from usage.row import UsageRow

log = logging.getLogger(__name__)


def cloud_policy(config: AppConfig, force_local: bool, available: tuple[str, ...], setup: str) -> str | None:
    """Why no cloud provider may serve this request, or None when some may."""
    if force_local:
        return "force local only is on, so no cloud model was tried"
    if not config.fallback.enabled:
        return f"cloud fallback is disabled (fallback.enabled in {config.source})"
    if not available:
        return f"no cloud provider is configured (set {setup})"
    return None


async def understand(svc: Services, state: State) -> tuple[Classification, TurnDecision]:
    """The request's classification and turn decision.

    Both come from the classifier's fast layers; only a new request they are unsure of waits for
    the full ladder (the embedding model still loading, a loaded local model asked): a revision
    or a question takes its artifact's task, so a slower answer could not change it.
    """
    config = svc.config
    explicit = state.get("task_type") or None
    last_task = state.get("last_task")
    artifacts = state.get("artifacts") or {}
    prompt = state["prompt"]
    # What the turn asks for, without what it refers to ("write the SQL for this ERD": code).
    request = without_mentions(config, normalise(prompt), artifacts)
    classification = svc.classifier.classify_fast(request, explicit=explicit, last_task=last_task)
    decision = decide_with(config, classification, prompt, artifacts=artifacts, helper=svc.classifier)
    if decision.kind == "new" and decision.decided_by is None and classification.layer not in DECIDED_LAYERS:
        # The fast layers were unsure: the full ladder may wait for the semantic layer or ask a
        # loaded model; only a layer that decides replaces the thread's guess.
        full = await svc.classifier.classify(request, explicit=explicit, last_task=last_task)
        if full.layer in DECIDED_LAYERS:
            classification = full
            decision = replace(decision, task=full.task)
    if decision.decided_by is not None and decision.confidence is not None:
        # The turn chose the new request's type: "the same for X", or its words once known new.
        classification = Classification(
            decision.task, decision.decided_by, decision.confidence, classification.task
        )
    elif decision.task != classification.task:
        # The thread decided (a revision of the ERD after an HTML page), not the classifier.
        classification = Classification(
            decision.task, "carried_over", CARRIED_OVER_CONFIDENCE, classification.task
        )
    return classification, decision


async def classify_task(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Resolve the task type and the turn, reset every per-request field, open the usage row."""
    svc = await services_for(runtime.context)
    config = svc.config
    # ModelRouter checked already; a Studio run reaches the graph directly (its error is fine there).
    check_prompt(state.get("prompt"), config.routing.max_prompt_bytes)
    classification, decision = await understand(svc, state)
    task, how, confidence = classification.task, classification.layer, classification.confidence
    force_local = state.get("force_local")
    force_local = config.fallback.force_local_default if force_local is None else bool(force_local)
    available = svc.cloud.available()
    blocked = cloud_policy(config, force_local, available, svc.cloud.missing_setup())
    route = config.route(task)
    emit_status(
        writer_for(runtime),
        "classify_task",
        f"Task: {task} ({_how_text(how, task, config)}, {confidence:.2f}) -> {route.model}",
        model=route.model,
    )
    emit_status(writer_for(runtime), "classify_task", turn_line(decision))
    started = time.time()
    return {
        "task": task,
        "classified_by": how,
        "confidence": confidence,
        "turn": (state.get("turn") or 0) + 1,
        "turn_decision": decision.to_dict(),
        "model": route.model,
        "route_choice": None,
        "ollama_host": None,
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
        "cloud_repairs_left": 0,
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
    row = UsageRow.unmeasured(thread_id, task, model, "interrupted")
    try:
        return await svc.usage.record(row)
    except UsageStoreError:
        log.exception("could not record the start of a request on thread %s", thread_id)
        return None


def turn_line(decision: TurnDecision) -> str:
    """The turn's step line: "Revising the ERD from turn 1", "New request: code"."""
    target = f"the {_label(decision.target_task)} from turn {decision.target_turn}"
    if decision.kind == "revision":
        return f"Revising {target}"
    if decision.kind == "question":
        return f"Question about {target} (answered in prose)"
    if decision.reference:
        return f"New request: {decision.task} (with {target} as reference)"
    return f"New request: {decision.task}"


# How a step line names an artifact ("the ERD from turn 1"); a task type not listed reads as itself.
_LABELS = {
    "erd": "ERD",
    "html": "HTML page",
    "jira": "JIRA tasks",
    "tasks": "task breakdown",
    "planning": "plan",
    "documentation": "document",
    "mermaid": "diagram",
    "architecture": "architecture diagram",
}


def _label(task: str | None) -> str:
    return _LABELS.get(task or "", task or "artifact")


def _how_text(how: ClassifiedBy, task: str, config: AppConfig) -> str:
    model = config.routing.classifier_model or "a local model"
    return {
        "explicit": "chosen explicitly",
        "keywords": "matched keywords",
        "semantic": "semantic match",
        "model": f"{model}'s choice",
        "carried_over": f"continuing the thread's {task} request",
        "default": "nothing matched clearly; default task",
    }[how]
