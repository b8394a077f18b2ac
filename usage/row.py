"""One usage row per request, as the graph records it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Literal, get_args

from config.vocabulary import FALLBACK_REASONS, FallbackReason

Location = Literal["local", "cloud"]
Status = Literal["success", "invalid", "unchecked", "failed", "interrupted"]
LocalOutcome = Literal["valid", "repaired", "invalid", "unchecked", "failed"]
LOCATIONS: tuple[str, ...] = get_args(Location)
STATUSES: tuple[str, ...] = get_args(Status)
LOCAL_OUTCOMES: tuple[str, ...] = get_args(LocalOutcome)


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 (sorts lexicographically)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class UsageRow:
    """What happened to one request.

    ``status``: success = valid artifact delivered; invalid = delivered but
    marked invalid; unchecked = delivered, but no parser could check it;
    failed = nothing delivered; interrupted = the request started and never
    finished (the process died; every request's row starts as this).
    ``model`` is the model that produced the final answer, or the local model
    tried when nothing was produced. ``generation_time_s`` is the wall time of
    the whole request.

    Each request credits two models by their own outcome: ``local_model`` with
    ``local_outcome`` (valid, repaired, invalid, unchecked or failed, the
    reason in ``fallback_reason``), and ``cloud_model``/``cloud_provider`` when
    a cloud model produced the delivered answer. ``cloud_attempts`` counts the
    cloud calls made (failed ones included). ``input_tokens``/``output_tokens``
    add up every attempt of the request; ``cloud_*_tokens`` is the cloud's share.
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
    local_outcome: LocalOutcome | None = None
    cloud_model: str | None = None
    cloud_provider: str | None = None
    cloud_attempts: int = 0
    cloud_input_tokens: int | None = None
    cloud_output_tokens: int | None = None

    @classmethod
    def unmeasured(
        cls,
        thread_id: str,
        task_type: str,
        model: str,
        status: Status,
        *,
        generation_time_s: float | None = None,
        error_message: str | None = None,
    ) -> UsageRow:
        """A local request with nothing measured: the row opened at its start, or a crash's."""
        return cls(
            thread_id=thread_id,
            task_type=task_type,
            model=model,
            provider="ollama",
            location="local",
            status=status,
            fallback_reason=None,
            local_model=model or None,
            load_time_s=None,
            first_token_s=None,
            generation_time_s=generation_time_s,
            input_tokens=None,
            output_tokens=None,
            validation=None,
            validation_error=None,
            attempts=0,
            error_message=error_message,
            local_outcome="failed" if status == "failed" and model else None,
        )

    def __post_init__(self) -> None:
        # Literal types are not enforced at runtime; a typo in the graph would
        # otherwise silently skew the dashboard's SQL counts.
        _check_choice("location", self.location, LOCATIONS)
        _check_choice("status", self.status, STATUSES)
        if self.fallback_reason is not None:
            _check_choice("fallback_reason", self.fallback_reason, FALLBACK_REASONS)
        if self.validation is not None:
            _check_choice("validation", self.validation, ("valid", "invalid"))
        if self.local_outcome is not None:
            _check_choice("local_outcome", self.local_outcome, LOCAL_OUTCOMES)
        if self.attempts < 0:
            raise ValueError(f"attempts must be >= 0, got {self.attempts}")
        if self.cloud_attempts < 0:
            raise ValueError(f"cloud_attempts must be >= 0, got {self.cloud_attempts}")

    def to_dict(self) -> dict[str, object]:
        """Return the row as a column -> value dict."""
        # Every field is a scalar, so no deep copy (dataclasses.asdict) is needed: ~10x cheaper.
        return {name: getattr(self, name) for name in _COLUMNS}


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


_COLUMNS = tuple(f.name for f in fields(UsageRow))
