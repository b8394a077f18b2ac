"""The async validator seam the graph calls; one instance per process."""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any, get_args

from config.schema import ValidationConfig, ValidatorName
from validators.code import check_code
from validators.documentation import check_documentation
from validators.html import check_html
from validators.jira import JiraTaskList, check_jira
from validators.mermaid import MermaidValidator
from validators.mermaid_pool import MermaidWorker, shared_worker
from validators.verdict import Verdict

VALIDATOR_NAMES: tuple[ValidatorName, ...] = get_args(ValidatorName)
# Validators that understand expect_kind / language; passing them elsewhere is
# a wiring mistake, so it raises rather than being silently ignored.
_TAKES_KIND = frozenset({"mermaid", "html"})
_TAKES_LANGUAGE = frozenset({"code"})


class Validators:
    """Every artifact check; owns a lease on the process's Mermaid worker (see ``mermaid_pool``).

    ``config`` sets the Mermaid limits and the Node executable; ``mermaid_worker`` replaces the
    process-wide worker (tests that kill or hang a worker of their own).
    """

    def __init__(
        self, config: ValidationConfig | None = None, *, mermaid_worker: MermaidWorker | None = None
    ) -> None:
        settings = config or ValidationConfig()
        self._mermaid = MermaidValidator(
            mermaid_worker or shared_worker(settings.node),
            timeout=settings.mermaid_timeout,
            start_timeout=settings.mermaid_start_timeout,
        )
        self._closed = False

    async def check(
        self,
        name: ValidatorName,
        text: str,
        *,
        expect_kind: str | None = None,
        language: str | None = None,
        request: str | None = None,
    ) -> Verdict:
        """Validate ``text`` with the named validator and return its verdict.

        ``request`` is the user's request: it may name the code's language, or ask for the
        external scripts an HTML page would otherwise be refused.
        Raises ValueError for an unknown validator, an unknown ``expect_kind``,
        or an option the validator does not take; RuntimeError after ``aclose``.
        """
        if self._closed:
            raise RuntimeError("Validators is closed")
        if name not in VALIDATOR_NAMES:
            raise ValueError(f"unknown validator {name!r}; known: {', '.join(VALIDATOR_NAMES)}")
        if expect_kind is not None and name not in _TAKES_KIND:
            raise ValueError(f"validator {name!r} takes no expect_kind")
        if language is not None and name not in _TAKES_LANGUAGE:
            raise ValueError(f"validator {name!r} takes no language")
        if name == "mermaid":
            return await self._mermaid.check(text, expect_kind=expect_kind)
        if name == "html":
            return check_html(text, expect_kind=expect_kind, request=request)
        if name == "code":
            return check_code(text, language=language, request=request)
        if name == "jira":
            return check_jira(text)
        return check_documentation(text)

    def ready(self, name: ValidatorName) -> bool:
        """Whether a check of ``name`` answers at once (only the Mermaid worker has a start-up)."""
        return name != "mermaid" or self._mermaid.ready

    def prepare(self, name: ValidatorName) -> None:
        """Get ready to check ``name`` soon: starts the Mermaid worker in the background if needed."""
        if name == "mermaid" and not self._closed:
            self._mermaid.prepare()

    @staticmethod
    def response_schema(name: ValidatorName) -> dict[str, Any] | None:
        """The JSON schema a model should be held to for this validator (structured output), if any.

        Built once per process (pydantic's schema generation is not free); treat it as read-only.
        """
        return _jira_schema() if name == "jira" else None

    async def aclose(self) -> None:
        """Release the Mermaid worker lease (the last one stops the worker); safe to call twice."""
        self._closed = True
        await self._mermaid.aclose()

    async def __aenter__(self) -> Validators:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@functools.cache
def _jira_schema() -> dict[str, Any]:
    return JiraTaskList.inline_schema()
