"""One rule for keeping API keys out of any text we store, show or log (every layer uses it)."""

from __future__ import annotations

from collections.abc import Iterable

MIN_SECRET_CHARS = 8  # shorter strings are not keys, and scrubbing them would eat ordinary words


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, and the first half of it that SDKs echo when they mask a key."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, "[redacted]").replace(secret[: len(secret) // 2], "[redacted]")
    return text
