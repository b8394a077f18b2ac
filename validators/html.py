"""Structural HTML check: tags balanced, something to render, whole page if asked."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from validators.extract import extract_artifact
from validators.verdict import Verdict

VOID_ELEMENTS = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen",
        "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip

# Elements whose end tag HTML lets authors omit; leaving them open is normal.
OPTIONAL_END = frozenset(
    {
        "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup",
        "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rt", "rp",
    }
)  # fmt: skip

HTML_LANGUAGES = ("html", "htm")
HTML_KINDS = frozenset({"document", "fragment"})
# Without a fence, the artifact starts at the first line beginning with a tag.
_START_RE = re.compile(r"^\s*<(?:!doctype\s+html|[a-zA-Z])", re.IGNORECASE)


class _BalanceParser(HTMLParser):
    """Track open elements and remember the first structural problem."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.seen: set[str] = set()
        self.doctype = False
        self.error: str | None = None

    def handle_decl(self, decl: str) -> None:
        if decl.lower().startswith("doctype html"):
            self.doctype = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in VOID_ELEMENTS:
            self.stack.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)  # <br/>, <svg .../>: nothing stays open

    def handle_endtag(self, tag: str) -> None:
        line = self.getpos()[0]
        if tag in VOID_ELEMENTS or self.error is not None:
            return
        open_tags = [name for name, _ in self.stack]
        if tag not in open_tags:
            self.error = f"closing tag </{tag}> at line {line} has no matching <{tag}>"
            return
        position = len(open_tags) - 1 - open_tags[::-1].index(tag)
        for name, opened_at in self.stack[position + 1 :]:
            if name not in OPTIONAL_END:
                self.error = (
                    f"closing tag </{tag}> at line {line} while <{name}> "
                    f"opened at line {opened_at} is still open"
                )
                return
        del self.stack[position:]

    def unclosed(self) -> tuple[str, int] | None:
        """Return the first element left open that HTML requires closing."""
        return next(((n, ln) for n, ln in self.stack if n not in OPTIONAL_END), None)


def _document_error(parser: _BalanceParser) -> str | None:
    missing = []
    if "html" not in parser.seen and not parser.doctype:
        missing.append("<html> (or <!DOCTYPE html>)")
    if "body" not in parser.seen:
        missing.append("<body>")
    if not missing:
        return None
    return "expected a complete HTML document with <html> and <body>; missing " + " and ".join(missing)


def check_html(text: str, *, expect_kind: str | None = None) -> Verdict:
    """Check that ``text`` holds balanced HTML.

    ``expect_kind="document"`` additionally requires ``<html>``/``<!DOCTYPE html>``
    and ``<body>``; ``"fragment"`` or None accepts any markup. Raises ValueError
    for other kinds.
    """
    if expect_kind is not None and expect_kind not in HTML_KINDS:
        raise ValueError(f"unknown HTML kind {expect_kind!r}; known kinds: document, fragment")
    artifact = extract_artifact(text, HTML_LANGUAGES, _START_RE)
    if not artifact:
        return Verdict.fail("", "empty output; expected HTML")
    parser = _BalanceParser()
    parser.feed(artifact)
    parser.close()
    if not parser.seen:
        return Verdict.fail(artifact, "no HTML element found; expected HTML markup")
    if parser.error is not None:
        return Verdict.fail(artifact, parser.error)
    unclosed = parser.unclosed()
    if unclosed is not None:
        name, line = unclosed
        return Verdict.fail(
            artifact, f"tag <{name}> opened at line {line} is never closed (output truncated?)"
        )
    if expect_kind == "document":
        document_error = _document_error(parser)
        if document_error is not None:
            return Verdict.fail(artifact, document_error)
    return Verdict.ok(artifact)
