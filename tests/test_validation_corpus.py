"""A corpus of typical model mistakes, each with the verdict the real validators must give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from validators import Validators

CORPUS = Path(__file__).parent / "fixtures" / "validation_corpus.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())


def test_the_corpus_covers_every_validator_and_the_issues_mistakes() -> None:
    assert {c["validator"] for c in CASES} == {"mermaid", "html", "code", "jira", "documentation"}
    ids = {c["id"] for c in CASES}
    assert len(ids) == len(CASES)
    for mistake in (
        "unclosed-bracket",
        "end-as-node-id",
        "single-dash-arrow",
        "unquoted-parens-in-label",
        "er-relation-without-label",
        "sequence-message-without-text",
        "sequence-unclosed-alt",
        "leftover-doubled-opening-fence",
        "leftover-trailing-fence-unfenced",
        "prose-preamble-unfenced",
        "prose-inside-fence",
        "jira-trailing-comma",
        "html-page-with-chatter",
        "erd-in-code-request",
        "html-page-in-python-request",
        "haskell-unchecked",
        "sql-unchecked",
    ):
        assert mistake in ids


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
async def test_corpus_case_gets_its_verdict(case: dict[str, Any]) -> None:
    async with Validators() as validators:
        verdict = await validators.check(
            case["validator"], case["text"], expect_kind=case.get("expect_kind"), request=case.get("request")
        )
    assert verdict.valid is case["valid"], verdict.error
    if not case["valid"]:
        assert verdict.error is not None and verdict.error.startswith(case["error"])
    assert verdict.line == case.get("line")
    assert verdict.diagram_type == case.get("diagram_type")
    assert verdict.checked is case.get("checked", True)
    if "language" in case:
        assert verdict.language == case["language"]
    if "artifact" in case:
        assert verdict.artifact == case["artifact"]
    # Never a leftover fence in what the user gets (Markdown documents may hold code blocks).
    if case["validator"] != "documentation":
        assert not any(line.lstrip().startswith(("```", "~~~")) for line in verdict.artifact.splitlines())
    assert verdict.warning is None
