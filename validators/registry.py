"""The async validator seam the graph calls; one instance per process."""

from __future__ import annotations

from types import TracebackType
from typing import get_args

from config.schema import ValidatorName
from validators.code import check_code
from validators.documentation import check_documentation
from validators.html import check_html
from validators.jira import check_jira
from validators.mermaid import check_mermaid
from validators.verdict import Verdict

VALIDATOR_NAMES: tuple[ValidatorName, ...] = get_args(ValidatorName)
# Validators that understand expect_kind / language; passing them elsewhere is
# a wiring mistake, so it raises rather than being silently ignored.
_TAKES_KIND = frozenset({"mermaid", "html"})
_TAKES_LANGUAGE = frozenset({"code"})


class Validators:
    """Built once per process; later owns the Node Mermaid worker.

    ``check`` is async because the real Mermaid parser will run out of process;
    today every check is a fast synchronous function.
    """

    def __init__(self) -> None:
        self._closed = False

    async def check(
        self,
        name: ValidatorName,
        text: str,
        *,
        expect_kind: str | None = None,
        language: str | None = None,
    ) -> Verdict:
        """Validate ``text`` with the named validator and return its verdict.

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
            return check_mermaid(text, expect_kind=expect_kind)
        if name == "html":
            return check_html(text, expect_kind=expect_kind)
        if name == "code":
            return check_code(text, language=language)
        if name == "jira":
            return check_jira(text)
        return check_documentation(text)

    async def aclose(self) -> None:
        """Release resources (the future Mermaid worker); safe to call twice."""
        self._closed = True

    async def __aenter__(self) -> Validators:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
