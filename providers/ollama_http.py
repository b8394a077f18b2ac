"""Ollama's wire format: replies and lines to ProviderError, context sizing, durations, final stats."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from providers.errors import ProviderError
from providers.ollama_types import GenerationStats

_PROXY_STATUSES = frozenset({502, 503, 504})  # a gateway's "the server behind me did not answer"
_CHARS_PER_TOKEN = 3  # conservative: real tokenizers average about 4 characters per token
_MESSAGE_OVERHEAD = 8  # role markers and template tokens per chat message
_MIN_NUM_CTX = 8192


def canonical(model: str) -> str:
    """Ollama's own spelling of a model name: `:latest` is the implicit tag."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def ollama_error(body: bytes) -> str | None:
    """The message of an Ollama error body (`{"error": "..."}`); None when Ollama did not write it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return None


def body_snippet(body: bytes, limit: int = 200) -> str:
    """A short, tag-free excerpt of a body for an error message (a proxy's HTML page, say)."""
    text = body.decode("utf-8", "replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_text(body: bytes) -> str:
    """The message of an Ollama error body, or an excerpt of whatever else it was."""
    message = ollama_error(body)
    return message if message is not None else body_snippet(body)


def reply_error(
    status: int, body: bytes, what: str, base_url: str, *, model: str | None = None, loading: bool = False
) -> ProviderError:
    """Classify a non-200 reply to `what` by its status, never by the wording of its message.

    Ollama's messages change across versions ("requires more system memory", "unable to load
    full model on GPU", "model runner has unexpectedly stopped ..."), so they are only shown.
    `model` names the model a 404 is about; `loading` says the request had to load it.
    """
    message = ollama_error(body)
    if message is None and status in _PROXY_STATUSES:
        # Ollama writes JSON errors; a 502/503/504 page is a proxy saying Ollama is unreachable.
        return ProviderError(
            "server_down",
            f"Ollama is not reachable behind the proxy at {base_url}: {what} got {status} "
            f"({body_snippet(body)})",
            status,
        )
    text = message if message is not None else body_snippet(body)
    if status == 404 and model is not None and message is not None:
        return ProviderError(
            "not_installed",
            f"{model} is not installed in Ollama (run: ollama pull {model}): {text}",
            status,
        )
    if status == 500 and loading:
        return ProviderError("load_failed", f"{model} could not be loaded: {text}", status)
    return ProviderError("generation_error", f"Ollama returned {status} for {what}: {text}", status)


def malformed_reply(what: str, body: bytes) -> ProviderError:
    """A 200 whose body is not the JSON Ollama sends (empty, truncated, someone else's page)."""
    return ProviderError(
        "generation_error", f"malformed reply from Ollama to {what}: {body_snippet(body)}", 200
    )


def transport_error(exc: aiohttp.ClientError, base_url: str, what: str) -> ProviderError:
    """A transport failure: refused/unreachable is `server_down`, a socket read limit is `timeout`."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return ProviderError("server_down", f"Ollama is not reachable at {base_url} ({exc})")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        # The class (SocketTimeoutError...) says which limit; the text alone may be empty.
        kind = type(exc).__name__
        return ProviderError("timeout", f"Ollama at {base_url} did not answer {what} in time ({kind})")
    return ProviderError("generation_error", f"connection to Ollama lost during {what} ({exc!r})")


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), or None.

    Read once per connection pool: aiohttp's own `trust_env` reads the environment again on
    every request, ~1 ms each (bench/), where httpx, the client before, read it once.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def parse_line(line: str | bytes, model: str) -> dict[str, Any]:
    """One NDJSON line; an `{"error": ...}` line (a failure mid-stream) becomes a ProviderError."""
    try:
        # orjson: a token's line parses in ~0.7 us against json's ~2.9 (a reply is hundreds of lines).
        chunk = orjson.loads(line)
    except ValueError:  # orjson.JSONDecodeError, invalid UTF-8 and nesting too deep included
        raise ProviderError(
            "generation_error", f"malformed stream line from Ollama: {_excerpt(line)!r}"
        ) from None
    if not isinstance(chunk, dict):
        raise ProviderError("generation_error", f"unexpected stream line from Ollama: {_excerpt(line)!r}")
    if "error" in chunk:
        raise ProviderError(
            "generation_error", f"Ollama reported an error for {model}: {chunk['error']!s:.500}"
        )
    return chunk


def _excerpt(line: str | bytes) -> str:
    text = line if isinstance(line, str) else line.decode("utf-8", "replace")
    return text.rstrip("\r\n")[:200]


def chunk_text(chunk: dict[str, Any]) -> str:
    """The reply text of a chat chunk ("" when the chunk carries none or is oddly shaped)."""
    message = chunk.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """An upper-side estimate of a chat prompt's tokens, without the model's tokenizer."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return -(-chars // _CHARS_PER_TOKEN) + _MESSAGE_OVERHEAD * len(messages)


def base_num_ctx(configured: int | None, max_num_ctx: int) -> int:
    """The window a model is loaded with, and what every ordinary request asks for.

    Ollama reloads a runner when a request's num_ctx differs from the one it was loaded
    with (server/sched.go needsReload), so the load and small requests must agree.
    """
    return configured if configured is not None else min(_MIN_NUM_CTX, max_num_ctx)


def sized_num_ctx(prompt_tokens: int, num_predict: int, configured: int | None, max_num_ctx: int) -> int:
    """The configured window, else the smallest power of two holding prompt and reply."""
    if configured is not None:
        return configured
    need = max(prompt_tokens + num_predict, _MIN_NUM_CTX)
    return min(1 << (need - 1).bit_length(), max_num_ctx)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def keep_alive_seconds(value: str | int) -> float:
    """Ollama's keep_alive as seconds: a number, or a Go duration; negative keeps forever."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        sign = -1.0 if text.startswith("-") else 1.0
        seconds = sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text))
    return math.inf if seconds < 0 else seconds


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from Ollama (Go writes nanoseconds; Python reads microseconds)."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def final_stats(chunk: dict[str, Any], started: float, first: float | None, now: float) -> GenerationStats:
    """Our timings plus the token counts and load time from Ollama's final chunk."""

    def seconds(key: str) -> float | None:
        value = chunk.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            result = float(value) / 1e9
        except OverflowError:  # an absurd integer from a garbled line
            return None
        return result if math.isfinite(result) else None

    def count(key: str) -> int | None:
        value = chunk.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    reason = chunk.get("done_reason")
    return GenerationStats(
        first_token_s=None if first is None else first - started,
        total_s=now - started,
        load_s=seconds("load_duration"),
        input_tokens=count("prompt_eval_count"),
        output_tokens=count("eval_count"),
        done_reason=reason if isinstance(reason, str) else None,
    )
