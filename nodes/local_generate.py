"""local_generate: stream the reply of the task's local model (or its repair of a rejected one)."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from nodes.attempts import failed_attempt, reply_attempt
from nodes.events import TokenStream, emit_status, writer_for
from nodes.messages import chat_messages, is_question
from nodes.state import State
from providers.errors import REASON_TEXT, ProviderError
from providers.ollama_http import canonical
from services import Context, services_for

NODE = "local_generate"


async def local_generate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Generate with the local model; a failure is recorded as a fallback reason, not raised."""
    svc = await services_for(runtime.context)
    model, writer = state["model"], writer_for(runtime)
    route = svc.config.route(state["task"])
    validation = state.get("validation")
    repair = bool(validation) and not (validation or {}).get("valid")
    attempts = list(state.get("attempts", []))
    update: dict[str, Any] = {}
    if repair:  # validate_output has said why and announced the repair
        update["repairs_left"] = state.get("repairs_left", 0) - 1
    else:
        emit_status(writer, NODE, f"Generating with {model} (local)", model=model, model_status="in_use")
        svc.validators.prepare(route.validator)  # a cold Mermaid worker starts while the model writes
    placed = state.get("ollama_host")
    host = svc.pool.host(placed["url"] if placed else None)
    tokens = TokenStream(writer, "local")
    try:
        result = await host.client.generate(
            model,
            chat_messages(state, route, repair=repair),
            on_token=tokens,
            # A question is answered in prose: JIRA's JSON schema would force tasks instead.
            response_format=None if is_question(state) else svc.validators.response_schema(route.validator),
            keep_alive=svc.config.keep_alive_for(state.get("task")),
            notify=lambda message: emit_status(writer, NODE, message, model=model),
        )
    except ProviderError as exc:
        tokens.flush()
        # A timeout starts the model's cool-down (the next requests do not wait on it) unless other
        # requests of this process were using it at that moment: then Ollama was busy, not broken.
        if exc.reason == "timeout" and not host.client.budget.busy(canonical(model)):
            key = svc.pool.health_key(canonical(model), host)
            await asyncio.to_thread(svc.health.record_failure, key, exc.reason, exc.message)
        emit_status(
            writer,
            NODE,
            f"Local model failed ({exc.reason}: {REASON_TEXT[exc.reason]}): {exc.message}",
            level="warning",
            model=model,
        )
        attempts.append(failed_attempt("local", "ollama", model, exc, repair))
        return {
            **update,
            "attempts": attempts,
            "fallback_reason": exc.reason,
            "error": exc.message,
            "reply": None,
            "reply_truncated": False,
        }
    tokens.flush()
    stats = result.stats
    emit_status(
        writer,
        NODE,
        f"{model} answered in {stats.total_s:.1f} s ({stats.output_tokens or '?'} tokens)",
        model=model,
        model_status="ready",
    )
    # validate_output turns a cut-off reply into an invalid verdict (repair, then cloud).
    truncated = stats.done_reason == "length"
    if truncated:
        limit = f"{stats.num_predict}-token" if stats.num_predict else "length"
        emit_status(
            writer,
            NODE,
            f"{model}'s reply was cut off at the {limit} limit (done_reason: length)",
            level="warning",
            model=model,
        )
    attempts.append(reply_attempt("local", "ollama", model, repair))
    load_s = state.get("load_s")
    if load_s is None and stats.load_s is not None and stats.load_s > 0.5:
        load_s = stats.load_s  # Ollama loaded it inside this call (keep-alive ran out meanwhile)
    return {
        **update,
        "attempts": attempts,
        "reply": result.text,
        "reply_source": "local",
        "reply_provider": "ollama",
        "reply_model": model,
        "reply_truncated": truncated,
        "load_s": load_s,
        "first_token_s": state.get("first_token_s") or stats.first_token_s,
        "input_tokens": (state.get("input_tokens") or 0) + (stats.input_tokens or 0),
        "output_tokens": (state.get("output_tokens") or 0) + (stats.output_tokens or 0),
    }
