"""Plain data the Ollama client returns: statuses, models, stream events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ModelStatus(StrEnum):
    """The seed's model lifecycle, as the UI and CLI show it."""

    NOT_LOADED = "not_loaded"
    LOADING = "loading"
    READY = "ready"
    IN_USE = "in_use"
    ERROR = "error"


@dataclass(frozen=True)
class InstalledModel:
    """One entry of `/api/tags`."""

    name: str
    size: int
    parameter_size: str | None = None
    quantization: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """One entry of `/api/ps`: resident in memory until `expires_at`."""

    name: str
    size: int
    size_vram: int
    expires_at: datetime | None
    context_length: int | None = None
    """The runner's num_ctx (newer Ollama reports it); a request asking another one reloads."""


@dataclass(frozen=True)
class PullProgress:
    """One progress line of `/api/pull`."""

    status: str
    completed: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class GenerationStats:
    """Timings we measured plus the counts and durations from Ollama's final chunk."""

    first_token_s: float | None
    total_s: float
    load_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    done_reason: str | None
    num_ctx: int | None = None
    """The context window this request asked for."""
    num_predict: int | None = None
    """The reply length limit this request asked for (done_reason "length" means it was hit)."""


@dataclass(frozen=True)
class Generation:
    """A finished local generation: the whole reply and its statistics."""

    text: str
    stats: GenerationStats
