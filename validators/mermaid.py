"""Header-level Mermaid check; a later issue swaps in the real Mermaid parser."""

from __future__ import annotations

import re

from validators.extract import extract_artifact, is_fence_line
from validators.verdict import Verdict

# Header keyword -> diagram kind. Longer keywords come first so that the
# regex alternation prefers e.g. "stateDiagram-v2" over "stateDiagram".
DIAGRAM_KINDS: dict[str, str] = {
    "flowchart-elk": "flowchart",
    "flowchart": "flowchart",
    "graph": "flowchart",
    "sequenceDiagram": "sequence",
    "classDiagram-v2": "class",
    "classDiagram": "class",
    "stateDiagram-v2": "state",
    "stateDiagram": "state",
    "erDiagram": "er",
    "journey": "journey",
    "gantt": "gantt",
    "pie": "pie",
    "quadrantChart": "quadrant",
    "requirementDiagram": "requirement",
    "gitGraph": "gitgraph",
    "C4Context": "c4",
    "C4Container": "c4",
    "C4Component": "c4",
    "C4Dynamic": "c4",
    "C4Deployment": "c4",
    "mindmap": "mindmap",
    "timeline": "timeline",
    "zenuml": "zenuml",
    "sankey-beta": "sankey",
    "xychart-beta": "xychart",
    "block-beta": "block",
    "packet-beta": "packet",
    "architecture-beta": "architecture",
    "kanban": "kanban",
    "radar-beta": "radar",
    "treemap-beta": "treemap",
}

# The header named in error messages for each kind.
_CANONICAL_HEADER: dict[str, str] = {}
for _keyword, _kind in DIAGRAM_KINDS.items():
    _CANONICAL_HEADER.setdefault(_kind, _keyword)
_CANONICAL_HEADER["state"] = "stateDiagram-v2"

# Spellings callers (or config files) commonly use for expect_kind.
_KIND_ALIASES: dict[str, str] = {
    "erd": "er",
    "entity-relationship": "er",
    "sequence-diagram": "sequence",
    "class-diagram": "class",
    "state-diagram": "state",
    "git": "gitgraph",
}

_FLOWCHART_HEADER = r"(?P<flow>flowchart-elk|flowchart|graph)(?:[ \t]+(?:TB|TD|BT|RL|LR))?[ \t]*;?[ \t]*$"
_OTHER_KEYWORDS = "|".join(
    re.escape(k) for k in DIAGRAM_KINDS if k not in {"flowchart-elk", "flowchart", "graph"}
)
# "graph"/"flowchart" must stand alone (plus direction) so prose such as
# "graph of services" is not taken for a header; others need a word boundary.
HEADER_RE = re.compile(rf"^[ \t]*(?:{_FLOWCHART_HEADER}|(?P<kw>{_OTHER_KEYWORDS})(?=$|[\s;:{{]))")

# Where an unfenced diagram starts: its header, or front-matter / %% lines
# that must stay with it (they carry the title and theme).
_START_RE = re.compile(rf"{HEADER_RE.pattern}|^---[ \t]*$|^[ \t]*%%")

KNOWN_HEADERS = ", ".join(DIAGRAM_KINDS)
MERMAID_LANGUAGES = ("mermaid", "mmd")


def normalize_kind(kind: str) -> str:
    """Map an ``expect_kind`` spelling ("erd", "erDiagram", "er") to a diagram kind."""
    if kind in DIAGRAM_KINDS:
        return DIAGRAM_KINDS[kind]
    lowered = kind.strip().lower()
    lowered = _KIND_ALIASES.get(lowered, lowered)
    if lowered in _CANONICAL_HEADER:
        return lowered
    known = ", ".join(sorted(_CANONICAL_HEADER))
    raise ValueError(f"unknown Mermaid diagram kind {kind!r}; known kinds: {known}")


def _header_kind(line: str) -> str | None:
    match = HEADER_RE.match(line)
    if match is None:
        return None
    return DIAGRAM_KINDS[match["flow"] or match["kw"]]


def _skip_preamble(lines: list[str]) -> tuple[int, str | None]:
    """Skip blank lines, front-matter, %% comments and %%{init}%% directives.

    Returns the index of the first other line, or an error for an unterminated
    front-matter block or directive.
    """
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index < len(lines) and lines[index].strip() == "---":
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            return index, f"front-matter '---' opened at line {index + 1} is never closed"
        index = end + 1
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped.startswith("%%{") and "}%%" not in stripped:
            # A multi-line directive runs until its closing "}%%".
            end = next((i for i in range(index + 1, len(lines)) if "}%%" in lines[i]), None)
            if end is None:
                return index, f"%%{{ directive opened at line {index + 1} is never closed with }}%%"
            index = end + 1
        elif not stripped or stripped.startswith("%%"):
            index += 1
        else:
            break
    return index, None


def _body_error(lines: list[str], header_index: int, header: str) -> str | None:
    has_body = False
    for index in range(header_index + 1, len(lines)):
        stripped = lines[index].strip()
        if is_fence_line(lines[index]):
            return f"leftover code fence line at line {index + 1}: {stripped!r}"
        if stripped and not stripped.startswith("%%"):
            has_body = True
    if not has_body:
        return f"diagram has a header ({header}) but no body"
    return None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def check_mermaid(text: str, *, expect_kind: str | None = None) -> Verdict:
    """Check that ``text`` holds a Mermaid diagram with a known header and a body.

    ``expect_kind`` ("er", "flowchart", "sequence", ...; see ``normalize_kind``)
    makes a different diagram type invalid. Raises ValueError for an unknown kind.
    """
    expected = normalize_kind(expect_kind) if expect_kind is not None else None
    artifact = extract_artifact(text, MERMAID_LANGUAGES, _START_RE)
    if not artifact:
        return Verdict.fail("", f"empty output; expected a Mermaid diagram ({KNOWN_HEADERS})")
    lines = artifact.splitlines()
    index, preamble_error = _skip_preamble(lines)
    if preamble_error is not None:
        return Verdict.fail(artifact, preamble_error)
    if index >= len(lines) or not any(_header_kind(line) for line in lines[index:]):
        return Verdict.fail(artifact, f"no Mermaid diagram header found; expected one of: {KNOWN_HEADERS}")
    kind = _header_kind(lines[index])
    if kind is None:
        what = "leftover code fence line" if is_fence_line(lines[index]) else "unexpected text"
        return Verdict.fail(
            artifact,
            f"{what} before the diagram header at line {index + 1}: {lines[index].strip()!r}; "
            "the diagram must start with its header (e.g. 'flowchart TD')",
        )
    header = lines[index].strip()
    body_error = _body_error(lines, index, header)
    if body_error is not None:
        return Verdict.fail(artifact, body_error, diagram_type=kind)
    if expected is not None and kind != expected:
        wanted = _CANONICAL_HEADER[expected]
        return Verdict.fail(
            artifact,
            f"expected {_article(expected)} {expected} diagram ({wanted}), got {kind}",
            diagram_type=kind,
        )
    return Verdict.ok(artifact, diagram_type=kind)
