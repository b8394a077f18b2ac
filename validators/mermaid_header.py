"""Mermaid structure without the parser: extraction, diagram headers and kinds, and our own rules.

The official parser (``validators.mermaid``) decides whether a diagram is valid. This module
finds the diagram in a reply, names its kind from the header, explains a missing or misplaced
header better than the parser can, enforces what the parser tolerates but a user must not get
(a leftover code fence, a header without a body), and is the whole check when Node is missing.
"""

from __future__ import annotations

import re

from config.vocabulary import MERMAID_KIND_ALIASES
from validators.extract import clean, encoding_error, extract_artifact, is_fence_line
from validators.verdict import Verdict

# Header keyword -> diagram kind (mermaid 11.17.2's detectors). Longer keywords come first so that
# the regex alternation prefers e.g. "stateDiagram-v2" over "stateDiagram".
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
    "sankey": "sankey",
    "xychart-beta": "xychart",
    "xychart": "xychart",
    "block-beta": "block",
    "block": "block",
    "packet-beta": "packet",
    "packet": "packet",
    "architecture-beta": "architecture",
    "kanban": "kanban",
    "radar-beta": "radar",
    "treemap-beta": "treemap",
    "treemap": "treemap",
    "ishikawa-beta": "ishikawa",
    "ishikawa": "ishikawa",
    "eventmodeling": "eventmodeling",
    "venn-beta": "venn",
    "treeView-beta": "treeview",
    "wardley-beta": "wardley",
    "cynefin-beta": "cynefin",
    "railroad-ebnf-beta": "railroad",
    "railroad-abnf-beta": "railroad",
    "railroad-peg-beta": "railroad",
    "railroad-beta": "railroad",
    "swimlane-beta": "swimlane",
}

# Mermaid's own type ids (what mermaid.parse reports) that differ from our kind names.
MERMAID_TYPE_KINDS: dict[str, str] = {
    "flowchart-v2": "flowchart",
    "flowchart-elk": "flowchart",
    "classDiagram": "class",
    "stateDiagram": "state",
    "gitGraph": "gitgraph",
    "quadrantChart": "quadrant",
    "treeView": "treeview",
    "railroadEbnf": "railroad",
    "railroadAbnf": "railroad",
    "railroadPeg": "railroad",
}

# The header named in error messages for each kind.
_CANONICAL_HEADER: dict[str, str] = {}
for _keyword, _kind in DIAGRAM_KINDS.items():
    _CANONICAL_HEADER.setdefault(_kind, _keyword)
_CANONICAL_HEADER["state"] = "stateDiagram-v2"

# Spellings callers (or config files) commonly use for expect_kind (config checks them at load).
_KIND_ALIASES = MERMAID_KIND_ALIASES

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

KNOWN_HEADERS = (
    "a diagram header such as 'flowchart TD', 'sequenceDiagram', 'classDiagram', "
    "'stateDiagram-v2', 'erDiagram' or 'architecture-beta'"
)
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


def kind_of_type(diagram_type: str) -> str:
    """Our kind for a type id that mermaid.parse reports ("flowchart-v2" -> "flowchart")."""
    return MERMAID_TYPE_KINDS.get(diagram_type, diagram_type.lower())


def extract_mermaid(text: str) -> str:
    """The diagram in a model reply: its fenced block, or the text from its header on.

    Prose a model writes inside the fence before the header is dropped as well: no diagram
    can start with it, so dropping it may rescue an artifact but never changes a valid one.
    """
    artifact = extract_artifact(text, MERMAID_LANGUAGES, _START_RE)
    lines = artifact.splitlines()
    index, error = _skip_preamble(lines)
    if error is None and index < len(lines) and _header_kind(lines[index]) is None:
        header = next((i for i in range(index + 1, len(lines)) if _header_kind(lines[i])), None)
        if header is not None:  # keep %% lines between the prose and the header
            start = next(i for i in range(index + 1, header + 1) if _START_RE.match(lines[i]))
            return clean("\n".join(lines[:index] + lines[start:]))
    return artifact


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


# Header keywords that are also plain words or identifiers ("pie = 3.14", "block:", "timeline"):
# in text that may be code, they mark a diagram only alone on their line ("pie title ..." too).
_WORD_KEYWORDS = frozenset(k for k in DIAGRAM_KINDS if k.isalpha() and k.islower())
# What follows an identifier in code, never a diagram header: an assignment, a call, an operator.
_CODE_AFTER_RE = re.compile(r"[-+*/%<>!&|^.(\[=:,]")


def plain_diagram_kind(text: str) -> str | None:
    """The diagram kind when ``text`` is plainly a Mermaid diagram, else None.

    Plainly: after any front-matter and ``%%`` lines, the first line is an unambiguous header
    ("erDiagram", "flowchart TD", "sequenceDiagram", "pie title Pets"). For telling a diagram
    from code, so it errs towards None: "pie = 3.14" or "erDiagram = load()" is code.
    """
    lines = text.splitlines()
    index, error = _skip_preamble(lines)
    if error is not None or index >= len(lines):
        return None
    line = lines[index].strip()
    match = HEADER_RE.match(line)
    if match is None:
        return None
    keyword = match["flow"] or match["kw"]
    rest = line[match.end() :].strip()
    if match["flow"] is not None or not rest:
        return DIAGRAM_KINDS[keyword]  # the flowchart header pattern already ends the line
    if keyword in _WORD_KEYWORDS:
        return DIAGRAM_KINDS[keyword] if keyword == "pie" and rest.startswith(("title", "showData")) else None
    return None if _CODE_AFTER_RE.match(rest) else DIAGRAM_KINDS[keyword]


def header_check(artifact: str) -> tuple[str | None, str | None, int | None]:
    """Find the diagram header: (kind, error explaining a missing or misplaced header, line index)."""
    lines = artifact.splitlines()
    index, preamble_error = _skip_preamble(lines)
    if preamble_error is not None:
        return None, preamble_error, None
    if index >= len(lines) or not any(_header_kind(line) for line in lines[index:]):
        return None, f"no Mermaid diagram header found; expected {KNOWN_HEADERS}", None
    kind = _header_kind(lines[index])
    if kind is None:
        what = "leftover code fence line" if is_fence_line(lines[index]) else "unexpected text"
        return (
            None,
            f"{what} before the diagram header at line {index + 1}: {lines[index].strip()!r}; "
            "the diagram must start with its header (e.g. 'flowchart TD')",
            None,
        )
    return kind, None, index


def body_error(artifact: str, header_index: int | None) -> str | None:
    """Our rules beyond the grammar: valid Unicode, no code fence line anywhere, a body after the header."""
    unencodable = encoding_error(artifact, "the diagram")
    if unencodable is not None:
        return unencodable[0]
    lines = artifact.splitlines()
    for number, line in enumerate(lines, start=1):
        if is_fence_line(line):
            return f"leftover code fence line at line {number}: {line.strip()!r}"
    if header_index is None:
        return None
    body = [line for line in lines[header_index + 1 :] if line.strip() and not line.strip().startswith("%%")]
    if not body:
        return f"diagram has a header ({lines[header_index].strip()}) but no body"
    return None


def mismatch_error(expected: str | None, kind: str | None) -> str | None:
    """The error for a diagram of another kind than the task asked for (None when it matches)."""
    if expected is None or kind is None or kind == expected:
        return None
    article = "an" if expected[:1].lower() in "aeiou" else "a"
    return f"expected {article} {expected} diagram ({_CANONICAL_HEADER[expected]}), got {kind}"


def check_mermaid_header(text: str, *, expect_kind: str | None = None) -> Verdict:
    """Check a diagram's structure only: header, body, no leftover fence, the expected kind.

    Used when the official parser cannot run (no Node); a syntax error in the body passes.
    ``expect_kind`` ("er", "flowchart", ...; see ``normalize_kind``) makes another kind
    invalid. Raises ValueError for an unknown kind.
    """
    expected = normalize_kind(expect_kind) if expect_kind is not None else None
    artifact = extract_mermaid(text)
    if not artifact:
        return Verdict.fail("", f"empty output; expected a Mermaid diagram starting with {KNOWN_HEADERS}")
    kind, error, index = header_check(artifact)
    if error is not None:
        return Verdict.fail(artifact, error)
    error = body_error(artifact, index) or mismatch_error(expected, kind)
    if error is not None:
        return Verdict.fail(artifact, error, diagram_type=kind)
    return Verdict.ok(artifact, diagram_type=kind)
