"""Cloud chat models (Gemini, OpenAI or any OpenAI-compatible endpoint), built once per process."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.exceptions import ModelError, ModelTimeoutError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from config.schema import AppConfig, CloudProviderName
from providers.errors import ProviderError, redact

_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}
_KEY_HINT = {
    "gemini": "GOOGLE_API_KEY",
    "openai": "OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible endpoint)",
}


@dataclass(frozen=True)
class CloudReply:
    """A finished cloud generation."""

    text: str
    provider: CloudProviderName
    model: str
    input_tokens: int | None
    output_tokens: int | None
    first_token_s: float | None
    total_s: float


class CloudModels:
    """The configured cloud providers that have credentials, in the configured order."""

    def __init__(self, config: AppConfig) -> None:
        self._config = config
        self._models: dict[CloudProviderName, BaseChatModel] = {}
        self._secrets = config.secrets.secret_values()

    def available(self) -> tuple[CloudProviderName, ...]:
        """Providers in fallback order that have what they need to be called."""
        secrets = self._config.secrets
        ready = {
            "gemini": secrets.google_api_key is not None,
            "openai": secrets.openai_api_key is not None or secrets.openai_base_url is not None,
        }
        return tuple(p for p in self._config.fallback.order() if ready[p])

    def missing_setup(self) -> str:
        """What the user must set to enable a cloud fallback."""
        return " or ".join(_KEY_HINT[p] for p in self._config.fallback.order())

    def model_name(self, provider: CloudProviderName) -> str:
        """The configured model name for `provider`."""
        return self._config.fallback.models.get(provider) or _default_model(provider)

    async def generate(
        self,
        provider: CloudProviderName,
        messages: Sequence[Mapping[str, str]],
        *,
        on_token: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> CloudReply:
        """One reply from `provider`; every SDK failure becomes a ProviderError.

        `messages` are chat turns as Ollama takes them (`role` system/user/assistant, `content`).
        Without `schema` the reply streams through `on_token`. With a JSON `schema` the provider's
        structured output holds the model to it (LangChain's `with_structured_output`, JSON-schema
        method); the raw JSON text is the reply (we validate it ourselves) and reaches `on_token`
        in one piece.
        """
        model = self._chat_model(provider)
        chat = [_MESSAGE_TYPES[m["role"]](m["content"]) for m in messages]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(
                self._config.fallback.timeout * (self._config.fallback.max_retries + 1)
            ):
                if schema is None:
                    total, first = await _stream(model, chat, on_token, started)
                else:
                    total, first = await _structured(model, chat, schema, on_token, started)
        except (TimeoutError, ModelTimeoutError, httpx.TimeoutException):
            raise ProviderError("timeout", f"{provider} did not answer within the time limit") from None
        except _cloud_errors() as exc:
            status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
            message = redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise ProviderError(
                "generation_error",
                f"{provider} failed: {message}",
                status if isinstance(status, int) else None,
            ) from None
        usage = total.usage_metadata if total is not None else None
        return CloudReply(
            text=total.text if total is not None else "",
            provider=provider,
            model=self.model_name(provider),
            input_tokens=usage["input_tokens"] if usage else None,
            output_tokens=usage["output_tokens"] if usage else None,
            first_token_s=first,
            total_s=time.perf_counter() - started,
        )

    async def aclose(self) -> None:
        """Close the SDK clients' connection pools (LangChain's chat models never do)."""
        for model in self._models.values():
            sync_client = getattr(model, "root_client", None)
            async_client = getattr(model, "root_async_client", None)
            if async_client is not None:
                await async_client.close()
            if sync_client is not None:
                sync_client.close()
            genai_client = getattr(model, "client", None)
            if genai_client is not None and hasattr(genai_client, "aio"):
                await genai_client.aio.aclose()
                genai_client.close()
        self._models.clear()

    def _chat_model(self, provider: CloudProviderName) -> BaseChatModel:
        if provider not in self._models:
            self._models[provider] = self._build(provider)
        return self._models[provider]

    def _build(self, provider: CloudProviderName) -> BaseChatModel:
        fallback = self._config.fallback
        secrets = self._config.secrets
        common: dict[str, Any] = {"model": self.model_name(provider), "timeout": fallback.timeout}
        # The SDKs are imported on first use: they cost ~2 s of start-up that a local-only run never needs.
        if provider == "gemini":
            from langchain_google_genai import ChatGoogleGenerativeAI

            assert secrets.google_api_key is not None
            # The Google SDK counts the first try as a retry: 1 means "no retry".
            return ChatGoogleGenerativeAI(
                google_api_key=secrets.google_api_key, max_retries=fallback.max_retries + 1, **common
            )
        from langchain_openai import ChatOpenAI

        # A local OpenAI-compatible server may need no key, but the SDK insists on one.
        key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else "not-needed"
        return ChatOpenAI(
            api_key=key,
            base_url=secrets.openai_base_url,
            max_retries=fallback.max_retries,
            stream_usage=True,
            **common,
        )


async def _stream(
    model: BaseChatModel,
    chat: list[BaseMessage],
    on_token: Callable[[str], None] | None,
    started: float,
) -> tuple[AIMessage | None, float | None]:
    first: float | None = None
    total: AIMessageChunk | None = None
    async for chunk in model.astream(chat):
        if not isinstance(chunk, AIMessageChunk):
            continue
        text = chunk.text
        if text and first is None:
            first = time.perf_counter() - started
        if text and on_token is not None:
            on_token(text)
        total = chunk if total is None else total + chunk
    return total, first


async def _structured(
    model: BaseChatModel,
    chat: list[BaseMessage],
    schema: dict[str, Any],
    on_token: Callable[[str], None] | None,
    started: float,
) -> tuple[AIMessage | None, float | None]:
    runnable = model.with_structured_output(schema, method="json_schema", include_raw=True)
    result = await runnable.ainvoke(chat)
    raw = result.get("raw") if isinstance(result, dict) else None
    if not isinstance(raw, AIMessage):
        return None, None
    if raw.text and on_token is not None:
        on_token(raw.text)
    return raw, time.perf_counter() - started


@functools.cache
def _cloud_errors() -> tuple[type[Exception], ...]:
    """What the SDKs raise (imported lazily); anything else is a bug and surfaces as one."""
    import openai
    from google.genai import errors as genai_errors

    return (ModelError, openai.OpenAIError, genai_errors.APIError, httpx.HTTPError, ValueError)


def _default_model(provider: CloudProviderName) -> str:
    return {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}[provider]
