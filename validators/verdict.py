"""The outcome of one validation, as every validator reports it."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

_SUMMARY_CHARS = 160


@dataclass(frozen=True)
class Verdict:
    """Outcome of validating one model answer.

    ``artifact`` is what the user receives: the extracted artifact (fences and
    chatter removed; for JIRA the normalised JSON), or the cleaned-up text when
    extraction found nothing better. It is ``""`` only for empty input. ``error``
    is one line ("line 3: unexpected '-'"); ``details`` may add the offending
    source line with a caret and what the parser expected there (for a repair
    prompt or a terminal). ``warning`` says when the check was weaker than usual
    (Mermaid checked by its header only because Node is missing).
    """

    valid: bool
    artifact: str
    error: str | None = None
    diagram_type: str | None = None
    language: str | None = None
    line: int | None = None
    warning: str | None = None
    details: str | None = None
    checked: bool = True
    """False when no parser could check the artifact (code in a language we cannot parse): such a
    verdict is never valid, and no repair or other model can make it checkable."""

    def __post_init__(self) -> None:
        # A verdict that is invalid without a reason cannot drive a repair
        # prompt, and a valid one with an error is contradictory.
        if self.valid and self.error is not None:
            raise ValueError("a valid Verdict must not carry an error")
        if not self.valid and not self.error:
            raise ValueError("an invalid Verdict needs an error message")
        if self.valid and not self.checked:
            raise ValueError("an unchecked Verdict cannot be valid")

    @classmethod
    def ok(cls, artifact: str, *, diagram_type: str | None = None, language: str | None = None) -> Verdict:
        """Build a valid verdict."""
        return cls(True, artifact, diagram_type=diagram_type, language=language)

    @classmethod
    def fail(
        cls,
        artifact: str,
        error: str,
        *,
        diagram_type: str | None = None,
        language: str | None = None,
        line: int | None = None,
        details: str | None = None,
    ) -> Verdict:
        """Build an invalid verdict with an actionable error."""
        return cls(False, artifact, error, diagram_type, language, line, details=details)

    def truncated(self, limit_note: str) -> Verdict:
        """The verdict on a reply the model stopped at its length limit: never valid, as it may be cut."""
        error = f"the reply was cut off at the model's length limit ({limit_note}); it may be incomplete"
        if not self.valid and self.error:
            error = f"{error}; also: {self.error}"
        return replace(self, valid=False, error=error)

    def with_warning(self, warning: str) -> Verdict:
        """The same verdict, noting that the check was weaker than usual."""
        return replace(self, warning=warning)

    @property
    def summary(self) -> str | None:
        """The error's first line, shortened for a status line."""
        if self.error is None:
            return None
        first = self.error.strip().splitlines()[0] if self.error.strip() else self.error
        return first if len(first) <= _SUMMARY_CHARS else first[: _SUMMARY_CHARS - 1] + "\u2026"

    @property
    def full_error(self) -> str | None:
        """The error and its details, as a repair prompt or a terminal shows them."""
        if self.error is None:
            return None
        return f"{self.error}\n{self.details}" if self.details else self.error

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict (for graph state and logs)."""
        # Every field is a scalar: a shallow dict is the same as asdict's deep copy, 4-7x cheaper.
        return {f.name: getattr(self, f.name) for f in fields(self)}
