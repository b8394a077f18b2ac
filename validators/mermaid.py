"""The Mermaid check: extraction, then the official parser (mermaid.parse in the Node worker)."""

from __future__ import annotations

import logging

from validators.mermaid_header import (
    KNOWN_HEADERS,
    body_error,
    check_mermaid_header,
    extract_mermaid,
    header_check,
    kind_of_type,
    mismatch_error,
    normalize_kind,
)
from validators.mermaid_pool import MermaidWorker, ParseFailure
from validators.verdict import Verdict

log = logging.getLogger(__name__)


class MermaidValidator:
    """Judges diagrams with the official parser, through the process's shared worker.

    Takes a lease on the worker at its first check and gives it back in ``aclose``. When Node
    cannot run, a diagram is checked by its header only and the verdict carries a warning
    (the operator sees why in the log); when the parser hangs or crashes on a diagram, the
    diagram is invalid: nothing unvalidated is passed off as good.
    """

    def __init__(self, worker: MermaidWorker, *, timeout: float, start_timeout: float) -> None:
        self._worker = worker
        self._timeout = timeout
        self._start_timeout = start_timeout
        self._leased = False

    async def check(self, text: str, *, expect_kind: str | None = None) -> Verdict:
        """Validate the diagram in ``text``; ``expect_kind`` ("er", "flowchart", ...) must match.

        Raises ValueError for an unknown ``expect_kind``.
        """
        expected = normalize_kind(expect_kind) if expect_kind is not None else None
        artifact = extract_mermaid(text)
        if not artifact:
            return Verdict.fail("", f"empty output; expected a Mermaid diagram starting with {KNOWN_HEADERS}")
        header_kind, header_error, header_index = header_check(artifact)
        rule_error = body_error(artifact, header_index)
        if rule_error is not None:
            return Verdict.fail(artifact, rule_error, diagram_type=header_kind)
        self._lease()
        outcome = await self._worker.parse(artifact, timeout=self._timeout, start_timeout=self._start_timeout)
        if isinstance(outcome, ParseFailure):
            return self._without_parser(artifact, expect_kind, header_kind, outcome)
        kind = kind_of_type(outcome.diagram_type) if outcome.diagram_type else header_kind
        mismatch = mismatch_error(expected, kind)
        if outcome.valid and mismatch is None:
            return Verdict.ok(artifact, diagram_type=kind)
        if outcome.valid:
            return Verdict.fail(artifact, str(mismatch), diagram_type=kind)
        # With no type detected, our header analysis says better what is wrong with the start.
        error = header_error if outcome.diagram_type is None and header_error else str(outcome.error)
        if mismatch is not None:
            error = f"{mismatch}; it does not parse either: {error}"
        return Verdict.fail(artifact, error, diagram_type=kind, line=outcome.line, details=outcome.details)

    def _lease(self) -> None:
        if not self._leased:
            self._worker.acquire()
            self._leased = True

    @property
    def ready(self) -> bool:
        """The worker runs and has parsed every diagram type once: a check answers at once."""
        return self._worker.warm is not None

    def prepare(self) -> None:
        """Start the worker now, without waiting, so the first check finds it warm."""
        self._lease()
        self._worker.start_soon(self._start_timeout)

    @staticmethod
    def _without_parser(
        artifact: str, expect_kind: str | None, header_kind: str | None, failure: ParseFailure
    ) -> Verdict:
        if failure.kind == "unavailable":
            verdict = check_mermaid_header(artifact, expect_kind=expect_kind)
            return verdict.with_warning(
                f"Mermaid parser unavailable ({failure.message}); only the diagram header was checked"
            )
        return Verdict.fail(
            artifact, f"{failure.message}; the diagram could not be validated", diagram_type=header_kind
        )

    async def aclose(self) -> None:
        """Give back the lease on the worker (the last one stops it)."""
        if self._leased:
            self._leased = False
            await self._worker.release()
