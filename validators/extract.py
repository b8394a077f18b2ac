"""Pull the artifact out of a chatty model answer (fences, preambles, sign-offs)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

# CommonMark fences: up to three spaces of indent, then 3+ backticks or tildes.
_OPENER_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CLOSER_RE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*$")

# Models often wrap a whole Markdown document, code examples included, in a
# ```markdown (or bare ```) fence of the same length; for these we track
# nesting instead of letting the first inner ``` close the wrapper (CommonMark
# would). "" is the untagged fence.
_NESTING_LANGUAGES = frozenset({"markdown", "md", ""})

# A surrogate code point in a str is always unpaired (Python joins proper pairs into one
# character); such text cannot be encoded as UTF-8, so no file, page or parser can take it.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class FencedBlock:
    """One fenced code block found in a model answer."""

    language: str  # lower-cased first word of the info string, "" if none
    body: str  # content lines, fence lines excluded, fence indent removed
    closed: bool  # False when the answer ended inside the block (truncated output)
    start_line: int  # 1-based line of the opening fence
    end_line: int  # 1-based line of the closing fence (last line of the text if unclosed)


def _language(info: str) -> str:
    words = info.split()
    return words[0].strip("{}.").lower() if words else ""


def _parse_opener(line: str) -> tuple[str, str, int] | None:
    """Return (fence, language, indent) if ``line`` opens a fence."""
    match = _OPENER_RE.match(line)
    if match is None:
        return None
    fence, info = match["fence"], match["info"]
    if fence[0] == "`" and "`" in info:
        return None  # inline code such as ```x``` is not a fence
    return fence, _language(info), len(match["indent"])


def _closes(line: str, fence: str) -> bool:
    match = _CLOSER_RE.match(line)
    return match is not None and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence)


def is_fence_line(line: str) -> bool:
    """Tell whether ``line`` is a code-fence line (opening or closing)."""
    return _parse_opener(line) is not None


def _opens_nested(line: str, fence: str) -> bool:
    """Tell whether ``line`` opens an inner block that the outer closer would also end."""
    inner = _parse_opener(line)
    if inner is None or not inner[1]:
        return False  # a bare fence line is a closer, not an opener
    return inner[0][0] == fence[0] and len(inner[0]) >= len(fence)


def _find_close(lines: list[str], start: int, fence: str, nested: bool) -> int | None:
    """Return the index of the line closing the fence opened before ``start``."""
    depth = 0
    for index in range(start, len(lines)):
        line = lines[index]
        if _closes(line, fence):
            if depth == 0:
                return index
            depth -= 1
            continue
        if nested and _opens_nested(line, fence):
            depth += 1
    return None


def find_fences(text: str) -> list[FencedBlock]:
    """List the top-level fenced blocks of ``text`` in order."""
    lines = text.splitlines()
    blocks: list[FencedBlock] = []
    index = 0
    while index < len(lines):
        opened = _parse_opener(lines[index])
        if opened is None:
            index += 1
            continue
        fence, language, indent = opened
        close = _find_close(lines, index + 1, fence, language in _NESTING_LANGUAGES)
        end = len(lines) if close is None else close
        body = [_unindent(line, indent) for line in lines[index + 1 : end]]
        end_line = len(lines) if close is None else close + 1
        if close is not None or "".join(body).strip():
            blocks.append(FencedBlock(language, "\n".join(body), close is not None, index + 1, end_line))
        # else: a stray fence line with nothing after it (a closer without opener), not a block
        index = end + 1
    return blocks


def strip_fence_lines(text: str) -> str:
    """Drop stray fence lines at the start and end of an artifact that never holds fences itself.

    Models double the opening fence or add a closing one to an unfenced answer; the parser may
    even accept a trailing fence, but the user must not receive one.
    """
    lines = text.splitlines()
    # Any indentation, tabs included: clean() strips it, so "\t```" would become a fence line.
    while lines and (is_fence_line(lines[0].lstrip()) or not lines[0].strip()):
        lines.pop(0)
    while lines and (is_fence_line(lines[-1].lstrip()) or not lines[-1].strip()):
        lines.pop()
    return clean("\n".join(lines))


def _unindent(line: str, indent: int) -> str:
    stripped = line[:indent].lstrip(" ")
    return stripped + line[indent:]


def encoding_error(text: str, what: str = "the output") -> tuple[str, int] | None:
    """Where ``text`` holds an unpaired surrogate (not valid Unicode): (message, 1-based line), or None.

    A model's JSON reply can carry the escape of a lone surrogate (U+D800); such an artifact can be
    neither saved nor shown, and the parsers that work on UTF-8 would raise instead of answering.
    """
    match = _SURROGATE_RE.search(text)
    if match is None:
        return None
    line = text.count("\n", 0, match.start()) + 1
    return (
        f"{what} contains an unpaired surrogate (U+{ord(match[0]):04X}) at line {line}: not valid Unicode",
        line,
    )


def clean(text: str) -> str:
    """Dedent and strip surrounding whitespace (keeps relative indentation)."""
    return textwrap.dedent(text).strip()


def _choose_block(
    blocks: Sequence[FencedBlock],
    wanted: frozenset[str],
    header_pattern: re.Pattern[str] | None,
) -> FencedBlock | None:
    if not blocks:
        return None
    for block in blocks:
        if block.language in wanted:
            return block
    if len(blocks) == 1:
        return blocks[0]
    # Several fences, none tagged with the wanted language: prefer the one
    # that looks like the artifact, then an untagged one.
    if header_pattern is not None:
        for block in blocks:
            if any(header_pattern.match(line) for line in block.body.splitlines()):
                return block
    for block in blocks:
        if not block.language:
            return block
    return blocks[0]


def extract_artifact(
    text: str,
    languages: Sequence[str],
    header_pattern: re.Pattern[str] | None = None,
) -> str:
    """Extract the artifact from a model answer.

    Preference order: the first fenced block tagged with one of ``languages``
    (case-insensitive); else the only fenced block; else, with several untagged
    or foreign blocks, the first whose body has a ``header_pattern`` line, then
    the first untagged one. Without fences: from the first line that
    ``header_pattern.match``-es to the end, else the whole text. An unclosed
    final fence yields everything after it. Stray fence lines at either end are
    dropped (see ``strip_fence_lines``): this extraction serves artifacts that
    never hold a fence themselves. The result is dedented and stripped; "" only
    when nothing is left.
    """
    wanted = frozenset(language.lower() for language in languages)
    block = _choose_block(find_fences(text), wanted, header_pattern)
    if block is not None:
        return strip_fence_lines(block.body)
    if header_pattern is not None:
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if header_pattern.match(line):
                return strip_fence_lines("\n".join(lines[index:]))
    return strip_fence_lines(text)
