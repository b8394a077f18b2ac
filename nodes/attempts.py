"""Small constructors for the attempt records every model-calling node appends."""

from __future__ import annotations

from nodes.state import Attempt, Source
from providers.errors import ProviderError


def failed_attempt(
    source: Source, provider: str, model: str, exc: ProviderError, repair: bool = False
) -> Attempt:
    """A call that produced no reply."""
    return Attempt(
        source=source,
        provider=provider,
        model=model,
        ok=False,
        valid=None,
        error=exc.message,
        reason=exc.reason,
        repair=repair,
    )


def reply_attempt(source: Source, provider: str, model: str, repair: bool = False) -> Attempt:
    """A call that produced a reply, not yet validated."""
    return Attempt(
        source=source,
        provider=provider,
        model=model,
        ok=True,
        valid=None,
        error=None,
        reason=None,
        repair=repair,
    )
