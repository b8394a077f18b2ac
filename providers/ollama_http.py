"""Ollama's wire format: error bodies and lines to ProviderError, durations, times, final-chunk stats."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

import httpx

from providers.errors import ProviderError
from providers.ollama_types import GenerationStats

# Substrings of the errors Ollama's scheduler returns when a model cannot be loaded.
_LOAD_ERROR_MARKERS = (
    "requires more system memory",
    "unable to load",
    "failed to load",
    "error loading model",
    "llama runner",
    "out of memory",
    "insufficient memory",
)


def canonical(model: str) -> str:
    """Ollama's own spelling of a model name: `:latest` is the implicit tag."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def error_text(body: bytes) -> str:
    """The message of an Ollama error body (`{"error": "..."}`), or the raw text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return body.decode("utf-8", "replace").strip()


def error_from_message(message: str, model: str, status: int | None = None) -> ProviderError:
    """Classify an Ollama error message (HTTP body or mid-stream line)."""
    if status == 404:
        return ProviderError(
            "not_installed",
            f"{model} is not installed in Ollama (run: ollama pull {model}): {message}",
            status,
        )
    if any(marker in message.lower() for marker in _LOAD_ERROR_MARKERS):
        return ProviderError("load_failed", f"{model} could not be loaded: {message}", status)
    where = f"Ollama returned {status}" if status else "Ollama reported an error"
    return ProviderError("generation_error", f"{where} for {model}: {message}", status)


def transport_error(exc: httpx.HTTPError, base_url: str, what: str) -> ProviderError:
    """A transport failure: refused/unreachable is `server_down`, a read limit is `timeout`."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ProviderError("server_down", f"Ollama is not reachable at {base_url} ({exc})")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("timeout", f"Ollama did not answer {what} in time ({exc!r})")
    return ProviderError("generation_error", f"connection to Ollama lost during {what} ({exc!r})")


def parse_line(line: str, model: str) -> dict[str, Any]:
    """One NDJSON line; an `{"error": ...}` line becomes the matching ProviderError."""
    try:
        chunk = json.loads(line)
    except ValueError:
        raise ProviderError(
            "generation_error", f"malformed stream line from Ollama: {line[:200]!r}"
        ) from None
    if not isinstance(chunk, dict):
        raise ProviderError("generation_error", f"unexpected stream line from Ollama: {line[:200]!r}")
    if "error" in chunk:
        raise error_from_message(str(chunk["error"]), model)
    return chunk


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
        return value / 1e9 if isinstance(value, int | float) else None

    return GenerationStats(
        first_token_s=None if first is None else first - started,
        total_s=now - started,
        load_s=seconds("load_duration"),
        input_tokens=chunk.get("prompt_eval_count"),
        output_tokens=chunk.get("eval_count"),
        done_reason=chunk.get("done_reason"),
    )
