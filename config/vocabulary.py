"""Closed vocabularies shared by every layer (state, stats, UI, logs, config checks)."""

from __future__ import annotations

from typing import Literal, get_args

FallbackReason = Literal[
    "server_down",
    "not_installed",
    "load_failed",
    "timeout",
    "generation_error",
    "invalid_output",
]
"""Why the local path did not deliver: the seed's five, with invalid output split out."""
FALLBACK_REASONS: tuple[str, ...] = get_args(FallbackReason)

# The diagram kinds the Mermaid validator tells apart (validators/mermaid_header.py maps each
# header keyword to one of these; a test keeps the two in step).
MERMAID_KINDS: frozenset[str] = frozenset(
    {
        "architecture", "block", "c4", "class", "cynefin", "er", "eventmodeling", "flowchart",
        "gantt", "gitgraph", "ishikawa", "journey", "kanban", "mindmap", "packet", "pie",
        "quadrant", "radar", "railroad", "requirement", "sankey", "sequence", "state", "swimlane",
        "timeline", "treemap", "treeview", "venn", "wardley", "xychart", "zenuml",
    }
)  # fmt: skip
# Spellings people commonly use for a kind in `expect_kind`.
MERMAID_KIND_ALIASES: dict[str, str] = {
    "erd": "er",
    "entity-relationship": "er",
    "sequence-diagram": "sequence",
    "class-diagram": "class",
    "state-diagram": "state",
    "git": "gitgraph",
}
HTML_KINDS: frozenset[str] = frozenset({"document", "fragment"})
# What `expect_kind` may say for each validator; validators not listed take none.
EXPECT_KINDS: dict[str, frozenset[str]] = {
    "mermaid": MERMAID_KINDS | frozenset(MERMAID_KIND_ALIASES),
    "html": HTML_KINDS,
}
