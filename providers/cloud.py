"""Cloud chat models (Gemini, OpenAI or any OpenAI-compatible endpoint), built once per process."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from langchain_core.exceptions import ModelError, ModelTimeoutError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage

from config.schema import AppConfig, CloudProviderName
from providers.errors import FallbackReason, ProviderError, redact

_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}
_KEY_HINT = {
    "gemini": "GOOGLE_API_KEY",
    "openai": "OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible endpoint)",
}
_KEY_ENV = {"gemini": "GOOGLE_API_KEY", "openai": "OPENAI_API_KEY"}
_NAMES = {"gemini": "Gemini", "openai": "OpenAI"}
# Google says "this key is bad" with a 400, not a 401: the reason in its ErrorInfo tells them apart.
_GOOGLE_KEY_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"}
)
# An SDK may show part of a key ("sk-abc***WXYZ"); the visible ends are still key text.
_MASKED_KEY = re.compile(r"\S*\*{3,}\S*")
_BACKOFF_S = 0.5  # first wait before a retry the server did not time itself
_BACKOFF_MAX_S = 8.0
FailureKind = Literal["bad_key", "rate_limited", "server", "refused", "unreachable", "unreadable", "timeout"]
_RETRYABLE: frozenset[FailureKind] = frozenset({"rate_limited", "server", "unreachable", "timeout"})


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
        self._building = asyncio.Lock()
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
        model = await self._chat_model(provider)
        chat = [_MESSAGE_TYPES[m["role"]](m["content"]) for m in messages]
        fallback = self._config.fallback
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # One budget for every try and every wait between them, so a provider can never hold
        # the request longer than the config says, whatever it answers.
        budget = fallback.timeout * (fallback.max_retries + 1)
        deadline = loop.time() + budget
        tries = 0
        while True:
            tries += 1
            relay = _Relay(on_token)
            try:
                async with asyncio.timeout_at(deadline):
                    if schema is None:
                        total, first = await _stream(model, chat, relay, started)
                    else:
                        total, first = await _structured(model, chat, schema, relay, started)
                break
            except _cloud_errors() as exc:
                failure = _classify(exc)
            wait = self._retry_wait(failure, tries, deadline - loop.time(), relay.sent)
            if wait is None:
                raise self._provider_error(provider, failure, budget) from None
            await asyncio.sleep(wait)
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

    def _retry_wait(self, failure: _Failure, tries: int, left: float, streamed: bool) -> float | None:
        """Seconds to wait before trying again, or None to give up now.

        Only transient failures are retried (429, 5xx, no connection, timeout), never another
        4xx: a bad key or a bad request fails the same way every time. Nothing is retried once
        tokens reached the user (they would see the reply twice), and no wait may run past the
        budget: a Retry-After longer than the time left ends the call now rather than as a timeout.
        """
        if failure.kind not in _RETRYABLE or streamed or tries > self._config.fallback.max_retries:
            return None
        wait = failure.retry_after
        if wait is None:
            wait = min(_BACKOFF_S * 2 ** (tries - 1), _BACKOFF_MAX_S)
        return wait if wait < left else None

    def _provider_error(self, provider: CloudProviderName, failure: _Failure, budget: float) -> ProviderError:
        name = _NAMES[provider]
        code = f"HTTP {failure.status}: " if failure.status is not None else ""
        detail = f" ({code}{failure.detail})" if failure.detail else ""
        reason: FallbackReason = "timeout" if failure.kind == "timeout" else "generation_error"
        if failure.kind == "timeout":
            text = f"{name} did not answer within the {budget:g} s cloud time limit"
        elif failure.kind == "bad_key":
            text = f"{name} rejected the API key{detail}; check {_KEY_ENV[provider]}"
        elif failure.kind == "rate_limited":
            text = f"{name} is rate limiting requests{detail}"
            if failure.retry_after is not None:
                text += f"; it asked to retry after {failure.retry_after:g} s"
        else:
            text = {
                "server": f"{name} had a server error{detail}",
                "refused": f"{name} refused the request{detail}",
                "unreachable": f"{name} could not be reached{detail}",
                "unreadable": f"{name} sent a reply that could not be read{detail}",
            }[failure.kind]
        message = _MASKED_KEY.sub("[redacted]", redact(text, self._secrets))
        return ProviderError(reason, message, failure.status)

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

    async def _chat_model(self, provider: CloudProviderName) -> BaseChatModel:
        # The first build imports the SDK (~1-2 s): in a worker thread, or every other request on
        # the event loop would stall that long and miss its first-token limit.
        if provider not in self._models:
            async with self._building:
                if provider not in self._models:
                    self._models[provider] = await asyncio.to_thread(self._build, provider)
        return self._models[provider]

    def _build(self, provider: CloudProviderName) -> BaseChatModel:
        fallback = self._config.fallback
        secrets = self._config.secrets
        common: dict[str, Any] = {"model": self.model_name(provider), "timeout": fallback.timeout}
        # The SDKs are imported on first use: they cost ~2 s of start-up that a local-only run never needs.
        if provider == "gemini":
            from langchain_google_genai import ChatGoogleGenerativeAI

            assert secrets.google_api_key is not None
            # Retries are ours (generate): the SDKs retry 408/409 too, and ignore how long
            # they may take. The Google SDK counts the first try as a retry: 1 means "none".
            # vertexai=False: GOOGLE_GENAI_USE_VERTEXAI in the environment must not turn a
            # Gemini API key setup into a Vertex AI one. base_url None is Google's endpoint.
            return ChatGoogleGenerativeAI(
                google_api_key=secrets.google_api_key,
                base_url=secrets.gemini_base_url,
                vertexai=False,
                max_retries=1,
                **common,
            )
        import openai
        from langchain_openai import ChatOpenAI

        # A local OpenAI-compatible server may need no key, but the SDK insists on one.
        key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else "not-needed"
        # Connection pools of our own: without them langchain-openai shares one cached pool per
        # (base_url, timeout) across the process, and closing ours closed every other router's.
        return ChatOpenAI(
            api_key=key,
            base_url=secrets.openai_base_url,
            max_retries=0,  # retries are ours (see generate)
            stream_usage=True,
            http_client=openai.DefaultHttpxClient(timeout=fallback.timeout),
            http_async_client=openai.DefaultAsyncHttpxClient(timeout=fallback.timeout),
            **common,
        )


class _Relay:
    """Passes tokens on, remembering whether any reached the user (then a retry would repeat them)."""

    def __init__(self, on_token: Callable[[str], None] | None) -> None:
        self._on_token = on_token
        self.sent = False

    def __call__(self, text: str) -> None:
        self.sent = True
        if self._on_token is not None:
            self._on_token(text)


@dataclass(frozen=True)
class _Failure:
    """What went wrong with one try, independent of which SDK said so."""

    kind: FailureKind
    status: int | None = None
    detail: str = ""  # the provider's own words (not yet redacted)
    retry_after: float | None = None  # seconds the server asked us to wait


def _classify(exc: BaseException) -> _Failure:
    """Map an SDK exception (LangChain's wrapper, the SDK's own, or the transport's) to a _Failure."""
    import openai
    from google.genai import errors as genai_errors

    chain = list(_causes(exc))
    if any(
        isinstance(e, (TimeoutError, ModelTimeoutError, httpx.TimeoutException, openai.APITimeoutError))
        for e in chain
    ):
        return _Failure("timeout")
    for err in chain:
        if isinstance(err, genai_errors.APIError):
            details = err.details if isinstance(err.details, dict) else {}
            body = details.get("error", details)
            info = body.get("details") if isinstance(body, dict) else None
            infos = [d for d in info if isinstance(d, dict)] if isinstance(info, list) else []
            reasons = {d.get("reason") for d in infos}
            delay = next((_seconds(d.get("retryDelay")) for d in infos if "retryDelay" in d), None)
            headers = getattr(err.response, "headers", None)
            return _from_status(
                err.code,
                err.message or str(err),
                _retry_after(headers) if delay is None else delay,
                bad_key=bool(reasons & _GOOGLE_KEY_REASONS),
            )
        if isinstance(err, openai.APIStatusError):
            body = err.body if isinstance(err.body, dict) else {}
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else None
            code = inner.get("code") if isinstance(inner, dict) else None
            return _from_status(
                err.status_code,
                str(message or err.message),
                _retry_after(err.response.headers),
                bad_key=code == "invalid_api_key",
            )
        if isinstance(err, (openai.APIConnectionError, httpx.TransportError)) or _is_aiohttp_connection(err):
            return _Failure("unreachable", detail=str(err) or type(err).__name__)
    return _Failure("unreadable", detail=f"{type(exc).__name__}: {exc}")


def _from_status(status: int, detail: str, retry_after: float | None, *, bad_key: bool) -> _Failure:
    if bad_key or status in (401, 403):
        return _Failure("bad_key", status, detail)
    if status == 429:
        return _Failure("rate_limited", status, detail, retry_after)
    if status >= 500:
        return _Failure("server", status, detail, retry_after)
    return _Failure("refused", status, detail)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps (LangChain raises its own classes `from` the SDK's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _retry_after(headers: Any) -> float | None:
    """Retry-After (seconds or an HTTP date) or OpenAI's retry-after-ms, in seconds."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        return seconds / 1000 if seconds is not None else None
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _seconds(duration: object) -> float | None:
    """A google.protobuf.Duration in JSON form ("20s", "0.5s") in seconds."""
    if isinstance(duration, str) and duration.endswith("s"):
        return _number(duration[:-1])
    return None


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if value >= 0 else None


def _is_aiohttp_connection(exc: BaseException) -> bool:
    # google-genai talks to Google through aiohttp when it is installed (it is, here).
    try:
        import aiohttp
    except ImportError:
        return False
    return isinstance(exc, aiohttp.ClientConnectionError)


async def _stream(
    model: BaseChatModel,
    chat: list[BaseMessage],
    on_token: Callable[[str], None],
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
        if text:
            on_token(text)
        total = chunk if total is None else total + chunk
    return total, first


async def _structured(
    model: BaseChatModel,
    chat: list[BaseMessage],
    schema: dict[str, Any],
    on_token: Callable[[str], None],
    started: float,
) -> tuple[AIMessage | None, float | None]:
    runnable = model.with_structured_output(schema, method="json_schema", include_raw=True)
    result = await runnable.ainvoke(chat)
    raw = result.get("raw") if isinstance(result, dict) else None
    if not isinstance(raw, AIMessage):
        return None, None
    if raw.text:
        on_token(raw.text)
    return raw, time.perf_counter() - started


@functools.cache
def _cloud_errors() -> tuple[type[Exception], ...]:
    """What the SDKs raise (imported lazily); anything else is a bug and surfaces as one."""
    import openai
    from google.genai import errors as genai_errors

    errors: tuple[type[Exception], ...] = (
        TimeoutError,
        ModelError,
        openai.OpenAIError,
        genai_errors.APIError,
        httpx.HTTPError,
        ValueError,  # unreadable replies (JSON, pydantic)
    )
    try:
        import aiohttp
    except ImportError:
        return errors
    return (*errors, aiohttp.ClientError)


def _default_model(provider: CloudProviderName) -> str:
    return {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}[provider]
