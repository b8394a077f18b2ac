"""The seed's ModelResponse: what a caller gets back from one request."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from providers.errors import FallbackReason


@dataclass(frozen=True)
class ModelResponse:
    """The outcome of one request, local or cloud, valid or not."""

    content: str
    """The artifact (empty when nothing could be produced)."""
    model_used: str
    is_fallback: bool
    """True when a cloud model produced `content`."""
    generation_time: float
    """Wall-clock seconds for the whole request."""
    tokens_used: int
    error_message: str | None
    fallback_reason: FallbackReason | None
    task_type: str
    provider: str = "ollama"
    valid: bool = False
    """True when `content` passed its validator."""
    validation_error: str | None = None
    attempts: int = 0
    thread_id: str | None = None
    warning: str | None = None
    """Something the user should know that did not stop the request (the thread was not saved)."""
    checked: bool = True
    """False when no parser could check `content` (code in a language we cannot parse)."""
    prose: bool = False
    """True when `content` answers a question about an artifact: text, not an artifact (not validated)."""
    language: str | None = None
    """For code: the language its validator judged it in ("rust"), from the request or the fence."""

    @property
    def ok(self) -> bool:
        """A valid artifact was delivered."""
        return self.valid and bool(self.content)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what `modelyard ask --json` prints and state['response'] holds)."""
        # Every field is a scalar: a shallow dict is the same as asdict's deep copy, 4-7x cheaper.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelResponse:
        """Inverse of `to_dict`, ignoring unknown keys (older checkpoints)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
