"""Translate Ollama's HTTP replies and transport errors into `ProviderError`, once, here."""

from __future__ import annotations

import json
from typing import Any

import httpx

from providers.errors import ProviderError

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
