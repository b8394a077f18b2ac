"""One usage row per request, as the graph records it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from config.vocabulary import FALLBACK_REASONS, FallbackReason

Location = Literal["local", "cloud"]
Status = Literal["success", "invalid", "failed"]
LOCATIONS: tuple[str, ...] = get_args(Location)
STATUSES: tuple[str, ...] = get_args(Status)


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 (sorts lexicographically)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class UsageRow:
    """What happened to one request.

    ``status``: success = valid artifact delivered; invalid = delivered but
    marked invalid; failed = nothing delivered. ``model`` is the model that
    produced the final answer, or the local model tried when nothing was
    produced. ``generation_time_s`` is the wall time of the whole request.
    """

    thread_id: str
    task_type: str
    model: str
    provider: str
    location: Location
    status: Status
    fallback_reason: FallbackReason | None
    local_model: str | None
    load_time_s: float | None
    first_token_s: float | None
    generation_time_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    validation: Literal["valid", "invalid"] | None
    validation_error: str | None
    attempts: int
    error_message: str | None
    created_at: str = field(default_factory=now_iso)

    def __post_init__(self) -> None:
        # Literal types are not enforced at runtime; a typo in the graph would
        # otherwise silently skew the dashboard's SQL counts.
        _check_choice("location", self.location, LOCATIONS)
        _check_choice("status", self.status, STATUSES)
        if self.fallback_reason is not None:
            _check_choice("fallback_reason", self.fallback_reason, FALLBACK_REASONS)
        if self.validation is not None:
            _check_choice("validation", self.validation, ("valid", "invalid"))
        if self.attempts < 0:
            raise ValueError(f"attempts must be >= 0, got {self.attempts}")

    def to_dict(self) -> dict[str, object]:
        """Return the row as a column -> value dict."""
        return asdict(self)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
