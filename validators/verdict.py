from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Verdict:
    """Outcome of validating one model answer.

    ``artifact`` is what the user receives: the extracted artifact (fences and
    chatter removed; for JIRA the normalised JSON), or the cleaned-up text when
    extraction found nothing better. It is ``""`` only for empty input.
    """

    valid: bool
    artifact: str
    error: str | None = None
    diagram_type: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        # A verdict that is invalid without a reason cannot drive a repair
        # prompt, and a valid one with an error is contradictory.
        if self.valid and self.error is not None:
            raise ValueError("a valid Verdict must not carry an error")
        if not self.valid and not self.error:
            raise ValueError("an invalid Verdict needs an error message")

    @classmethod
    def ok(cls, artifact: str, *, diagram_type: str | None = None, language: str | None = None) -> Verdict:
        """Build a valid verdict."""
        return cls(True, artifact, None, diagram_type, language)

    @classmethod
    def fail(
        cls,
        artifact: str,
        error: str,
        *,
        diagram_type: str | None = None,
        language: str | None = None,
    ) -> Verdict:
        """Build an invalid verdict with an actionable error."""
        return cls(False, artifact, error, diagram_type, language)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict (for graph state and logs)."""
        return asdict(self)
