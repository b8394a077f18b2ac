"""cloud_fallback: ask the next allowed cloud provider, in the configured order."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes.attempts import failed_attempt, reply_attempt
from nodes.events import TokenStream, emit_status
from nodes.messages import request_prompt
from nodes.prompts import system_prompt
from nodes.state import State
from providers.errors import REASON_TEXT, ProviderError
from services import Context, services_for

NODE = "cloud_fallback"
_PROVIDER_NAMES = {"gemini": "Gemini", "openai": "OpenAI"}


async def cloud_fallback(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Try the remaining providers until one replies; its reply is validated next."""
    svc = await services_for(runtime.context)
    route = svc.config.route(state["task"])
    writer = runtime.stream_writer
    tried = list(state.get("cloud_tried", []))
    attempts = list(state.get("attempts", []))
    reason = state.get("fallback_reason") or "generation_error"
    errors: list[str] = []
    for provider in (p for p in state.get("cloud_providers", []) if p not in tried):
        tried.append(provider)
        name = svc.cloud.model_name(provider)  # type: ignore[arg-type]
        emit_status(
            writer,
            NODE,
            f"Local model failed ({reason}: {REASON_TEXT[reason]}): falling back to "
            f"{_PROVIDER_NAMES.get(provider, provider)} ({name})",
            level="warning",
            model=name,
        )
        tokens = TokenStream(writer, "cloud")
        try:
            reply = await svc.cloud.generate(
                provider,  # type: ignore[arg-type]
                system_prompt(route),
                request_prompt(state, route),
                on_token=tokens,
            )
        except ProviderError as exc:
            tokens.flush()
            emit_status(writer, NODE, f"{provider} failed: {exc.message}", level="warning", model=name)
            attempts.append(failed_attempt("cloud", provider, name, exc))
            errors.append(exc.message)
            continue
        tokens.flush()
        attempts.append(reply_attempt("cloud", provider, name))
        return {
            "cloud_tried": tried,
            "attempts": attempts,
            "reply": reply.text,
            "reply_source": "cloud",
            "reply_provider": provider,
            "reply_model": reply.model,
            "first_token_s": reply.first_token_s,
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
        }
    error = state.get("error") or ""
    return {
        "cloud_tried": tried,
        "attempts": attempts,
        "reply": None,
        "error": f"{error} Cloud fallback failed too: {'; '.join(errors)}".strip(),
    }
