"""cloud_fallback: ask the next allowed cloud provider, in the configured order, or have it repair."""

from __future__ import annotations

from typing import Any, Literal, cast, get_args

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from config.schema import CloudProviderName, TaskRoute
from nodes.attempts import failed_attempt, reply_attempt
from nodes.events import TokenStream, emit_status, writer_for
from nodes.messages import chat_messages, is_question
from nodes.state import Attempt, State
from nodes.validate_output import cloud_repair_due
from providers.cloud import CloudReply
from providers.errors import REASON_TEXT, ProviderError
from services import Context, Services, services_for

NODE = "cloud_fallback"
_PROVIDER_NAMES = {"gemini": "Gemini", "openai": "OpenAI"}


async def cloud_fallback(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Repair the cloud's invalid reply while repairs are left; else try the remaining providers."""
    svc = await services_for(runtime.context)
    route = svc.config.route(state["task"])
    writer = writer_for(runtime)
    attempts = list(state.get("attempts", []))
    update: dict[str, Any] = {}
    error = state.get("error") or ""
    if cloud_repair_due(state):
        provider = str(state.get("reply_provider"))
        name = str(state.get("reply_model"))
        update["cloud_repairs_left"] = state.get("cloud_repairs_left", 0) - 1
        try:
            reply = await _ask(svc, provider, chat_messages(state, route, repair=True), route, writer)
        except ProviderError as exc:  # the repair failed: the remaining providers still may help
            emit_status(
                writer, NODE, f"{provider} failed to repair: {exc.message}", level="warning", model=name
            )
            attempts.append(failed_attempt("cloud", provider, name, exc, repair=True))
            error = f"{error} Cloud repair failed: {exc.message}".strip()
        else:
            attempts.append(reply_attempt("cloud", provider, name, repair=True))
            return {**update, **_replied(state, reply, attempts)}
    return {**update, **await _next_provider(state, svc, route, writer, attempts, error)}


async def _next_provider(
    state: State, svc: Services, route: TaskRoute, writer: StreamWriter, attempts: list[Attempt], error: str
) -> dict[str, Any]:
    tried = list(state.get("cloud_tried", []))
    reason = state.get("fallback_reason") or "generation_error"
    errors: list[str] = []
    for provider in (p for p in state.get("cloud_providers", []) if p not in tried):
        tried.append(provider)
        name = svc.cloud.model_name(_provider(provider))
        emit_status(
            writer,
            NODE,
            f"Local model failed ({reason}: {REASON_TEXT[reason]}): falling back to "
            f"{_PROVIDER_NAMES.get(provider, provider)} ({name})",
            level="warning",
            model=name,
        )
        try:
            messages = chat_messages(state, route, repair=False)
            reply = await _ask(svc, provider, messages, route, writer, prose=is_question(state))
        except ProviderError as exc:
            emit_status(writer, NODE, f"{provider} failed: {exc.message}", level="warning", model=name)
            attempts.append(failed_attempt("cloud", provider, name, exc))
            errors.append(exc.message)
            continue
        attempts.append(reply_attempt("cloud", provider, name))
        return {
            "cloud_tried": tried,
            "cloud_repairs_left": svc.config.validation.cloud_repair_attempts,
            **_replied(state, reply, attempts),
        }
    if errors:
        error = f"{error} Cloud fallback failed too: {'; '.join(errors)}".strip()
    return {"cloud_tried": tried, "attempts": attempts, "reply": None, "error": error}


async def _ask(
    svc: Services,
    provider: str,
    messages: list[dict[str, str]],
    route: TaskRoute,
    writer: StreamWriter,
    *,
    prose: bool = False,
) -> CloudReply:
    """One cloud call, streamed to the user (JIRA tasks through the provider's structured output).

    `prose`: a question's answer, never held to an artifact's schema.
    """
    svc.validators.prepare(route.validator)
    tokens = TokenStream(writer, "cloud")
    try:
        return await svc.cloud.generate(
            _provider(provider),
            messages,
            on_token=tokens,
            schema=None if prose else svc.validators.response_schema(route.validator),
        )
    finally:
        tokens.flush()


def _provider(name: str) -> CloudProviderName:
    if name not in get_args(CloudProviderName):
        raise ValueError(f"unknown cloud provider {name!r}")
    return cast(CloudProviderName, name)


def _replied(state: State, reply: CloudReply, attempts: list[Attempt]) -> dict[str, Any]:
    """The reply in state; its tokens add to every earlier attempt's (local, repairs, cloud)."""
    return {
        "attempts": attempts,
        "reply": reply.text,
        "reply_source": "cloud",
        "reply_provider": reply.provider,
        "reply_model": reply.model,
        "reply_truncated": False,  # a cut local reply must not make the cloud's look cut too
        "first_token_s": reply.first_token_s,
        **_add_tokens(state, "input_tokens", reply.input_tokens),
        **_add_tokens(state, "output_tokens", reply.output_tokens),
    }


def _add_tokens(
    state: State, name: Literal["input_tokens", "output_tokens"], count: int | None
) -> dict[str, Any]:
    cloud: Literal["cloud_input_tokens", "cloud_output_tokens"] = (
        "cloud_input_tokens" if name == "input_tokens" else "cloud_output_tokens"
    )
    if count is None:  # the provider did not say: keep what is known rather than guess
        return {}
    return {name: (state.get(name) or 0) + count, cloud: (state.get(cloud) or 0) + count}
