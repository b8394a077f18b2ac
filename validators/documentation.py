"""Markdown documentation check: has a heading, no unclosed code fence."""

from __future__ import annotations

import re

from validators.extract import clean, encoding_error, find_fences
from validators.verdict import Verdict

MARKDOWN_LANGUAGES = frozenset({"markdown", "md"})
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+\S|[ \t]*$)")
_OPENER_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _extract(text: str) -> str:
    """Pick the document: a ```markdown block, a lone untagged wrapper, or everything.

    A fenced block of another language among prose is part of the document
    (a code example), so then the whole answer is kept.
    """
    blocks = find_fences(text)
    for block in blocks:
        if block.language in MARKDOWN_LANGUAGES:
            return clean(block.body)
    if len(blocks) == 1 and not blocks[0].language:
        block = blocks[0]
        lines = text.splitlines()
        before, after = lines[: block.start_line - 1], lines[block.end_line :]
        # A lone untagged fence is a wrapper only if nothing surrounds it.
        if not "".join(before).strip() and not "".join(after).strip():
            return clean(block.body)
    return clean(text)


def _structure_error(document: str) -> str | None:
    """Find an unclosed fence or a missing heading (headings inside code don't count)."""
    open_fence: tuple[str, int] | None = None
    has_heading = False
    for number, line in enumerate(document.splitlines(), start=1):
        if open_fence is not None:
            fence = open_fence[0]
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                open_fence = None
            continue
        match = _OPENER_RE.match(line)
        if match is not None:
            open_fence = (match[1], number)
        elif _HEADING_RE.match(line):
            has_heading = True
    if open_fence is not None:
        return f"unclosed code fence opened at line {open_fence[1]}"
    if not has_heading:
        return "no Markdown heading found; documentation should start with a '# Title' heading"
    return None


def check_documentation(text: str) -> Verdict:
    """Check that ``text`` is a Markdown document with a heading and closed fences."""
    document = _extract(text)
    if not document:
        return Verdict.fail("", "empty output; expected a Markdown document")
    unencodable = encoding_error(document)
    if unencodable is not None:
        return Verdict.fail(document, unencodable[0], line=unencodable[1])
    error = _structure_error(document)
    if error is not None:
        return Verdict.fail(document, error)
    return Verdict.ok(document)
