"""HTML check: the HTML5 parsing algorithm (html5lib), the structure asked for, no stray scripts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import html5lib

from config.vocabulary import HTML_KINDS
from validators.extract import encoding_error, extract_artifact
from validators.verdict import Verdict

# Elements whose end tag HTML lets authors omit: left open, or closed once too often, they are harmless.
OPTIONAL_END = frozenset(
    {
        "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup",
        "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rt", "rp",
        "br", "hr", "img", "input", "meta", "link",
    }
)  # fmt: skip

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
# Browsers stop nesting past this depth (Blink's parser limit) and flatten the rest; html5lib's
# scope checks grow with the depth, so degenerate input ("<div>" * 20_000 took 20 s) is refused
# before it is parsed.
MAX_DEPTH = 512
# A start or end tag, a comment, or an element whose content is text (skipped whole).
_TAG_RE = re.compile(r"<(?:(?P<end>/?)(?P<name>[a-zA-Z][^\s/>]*)|(?P<comment>!--))")
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})

HTML_LANGUAGES = ("html", "htm")
# Without a fence, the artifact starts at the first line beginning with a tag.
_START_RE = re.compile(r"^\s*<(?:!doctype\s+html|[a-zA-Z])", re.IGNORECASE)
_OFF_SITE_RE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
# Words in a request that ask for third-party scripts in general.
_ASKS_FOR_SCRIPTS_RE = re.compile(
    r"\b(?:cdns?|external scripts?|script tags?|third[- ]party)\b", re.IGNORECASE
)
# URL words that name no library.
_GENERIC_URL_WORDS = frozenset(
    {
        "www", "cdn", "cdnjs", "com", "net", "org", "dev", "unpkg", "jsdelivr", "cloudflare", "googleapis",
        "ajax", "libs", "static", "code", "npm", "dist", "umd", "esm", "min", "bundle", "latest", "prod",
        "production", "module", "main", "index", "script", "scripts", "https", "http",
    }
)  # fmt: skip


def _fatal(code: str, data: dict[str, str] | None, line: int) -> str | None:
    """The problem an html5lib parse error reveals, or None for spec nits that render fine."""
    name = (data or {}).get("name", "")
    if code.startswith("eof-in-"):
        what = code.removeprefix("eof-in-").replace("-", " ")
        return f"the output ends inside a {what} at line {line} (truncated?)"
    if code.startswith("unexpected-end-tag") and code != "unexpected-end-tag-treated-as":
        return (
            None if name in OPTIONAL_END else f"closing tag </{name}> at line {line} has no matching <{name}>"
        )
    if code == "end-tag-too-early":
        return f"closing tag </{name}> at line {line} while an element opened inside <{name}> is still open"
    if code == "expected-one-end-tag-but-got-another":
        got, expected = (data or {}).get("gotName"), (data or {}).get("expectedName")
        return f"closing tag </{got}> at line {line} while <{expected}> is still open"
    if code.startswith("adoption-agency"):
        return f"misnested tags: </{name}> at line {line} closes <{name}> across another element"
    if code.endswith("implies-table-voodoo"):
        return f"<{name}> at line {line} is not allowed inside a table (browsers move it out)"
    if code.startswith("expected-eof-but-got"):
        return f"content after the end of the document at line {line}"
    return None


# A problem found in the markup, and its 1-based line when known.
_Problem = tuple[str, int | None]


def _nesting_problem(artifact: str) -> _Problem | None:
    """Elements nested deeper than MAX_DEPTH, counted cheaply from the tags (one linear scan).

    Elements whose end tag may be omitted, void and self-closed ones are not counted: the
    estimate errs low, so markup a browser keeps as written is not refused.
    """
    lowered = artifact.lower()
    depth = 0
    position = 0
    while (match := _TAG_RE.search(artifact, position)) is not None:
        position = match.end()
        if match["comment"]:
            end = artifact.find("-->", position)
            position = len(artifact) if end < 0 else end + 3
            continue
        close = artifact.find(">", position)
        if close < 0:
            break  # the rest is inside one unterminated tag
        position = close + 1
        name = match["name"].lower()
        if name in OPTIONAL_END or name in VOID_ELEMENTS or artifact[close - 1] == "/":
            continue  # not nesting; an HTML <div/> does stay open, so skipping it errs low
        if match["end"]:
            depth = max(0, depth - 1)
            continue
        if name in _RAW_TEXT:
            end = lowered.find(f"</{name}", position)
            position = len(artifact) if end < 0 else end
            continue
        depth += 1
        if depth > MAX_DEPTH:
            line = artifact.count("\n", 0, match.start()) + 1
            return (
                f"elements nested more than {MAX_DEPTH} deep at line {line}: browsers flatten "
                "markup this deep (is the output repeating itself?)",
                line,
            )
    return None


def _parse(artifact: str) -> tuple[Element, _Problem | None]:
    """Parse as a browser would; return the tree and the first structural problem."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    document = parser.parse(artifact)
    for (line, _column), code, data in parser.errors:
        problem = _fatal(code, data, line)
        if problem is not None:
            return document, (problem, line)
    unclosed = [e.name for e in parser.tree.openElements if e.name not in OPTIONAL_END]
    if unclosed:
        name = unclosed[0]
        # The tag name is the author's text ("<a(>" opens an "a(" element): escaped, not a pattern.
        opened_re = re.compile(rf"<{re.escape(name)}(?![\w-])", re.IGNORECASE)
        opened = [n for n, text in enumerate(artifact.splitlines(), 1) if opened_re.search(text)]
        where = f" opened at line {opened[0]}" if len(opened) == 1 else ""
        line = opened[0] if len(opened) == 1 else None
        return document, (f"tag <{name}>{where} is never closed (output truncated?)", line)
    return document, None


def _document_error(artifact: str, document: Element) -> str | None:
    missing = []
    if not re.search(r"<!doctype\s+html|<html[\s>]", artifact, re.IGNORECASE):
        missing.append("<html> (or <!DOCTYPE html>)")
    body = document.find("body")
    has_content = body is not None and (len(body) > 0 or bool((body.text or "").strip()))
    if not re.search(r"<body[\s>]", artifact, re.IGNORECASE) or not has_content:
        missing.append("<body>")
    if not missing:
        return None
    return "expected a complete HTML document with <html> and <body>; missing " + " and ".join(missing)


def _library_words(src: str) -> set[str]:
    try:
        url = urlsplit(src.strip() if "://" in src else "https:" + src.strip())
        hostname = url.hostname or ""
    except ValueError:  # e.g. "//[bad": an unbalanced IPv6 bracket; the words are still there
        return {w for w in re.split(r"[^a-z]+", src.lower()) if len(w) >= 3 and w not in _GENERIC_URL_WORDS}
    words = re.split(r"[^a-z]+", f"{hostname} {url.path}".lower())
    return {w for w in words if len(w) >= 3 and w not in _GENERIC_URL_WORDS}


def _asked_for(src: str, request: str | None) -> bool:
    """Whether the request asks for this script: off-site scripts in general, or its library by name."""
    if not request:
        return False
    if _ASKS_FOR_SCRIPTS_RE.search(request):
        return True
    asked = {w for w in re.split(r"[^a-z]+", request.lower()) if len(w) >= 4}
    return any(a.startswith(w) or w.startswith(a) for w in _library_words(src) if len(w) >= 4 for a in asked)


def _script_error(artifact: str, document: Element, request: str | None) -> _Problem | None:
    for script in document.iter("script"):
        src = script.get("src") or ""
        if _OFF_SITE_RE.match(src) and not _asked_for(src, request):
            line = next((n for n, text in enumerate(artifact.splitlines(), 1) if src in text), None)
            where = f" at line {line}" if line else ""
            message = (
                f"external script {src}{where}: the request did not ask for off-site scripts; "
                "inline the code or leave it out"
            )
            return message, line
    return None


def check_html(text: str, *, expect_kind: str | None = None, request: str | None = None) -> Verdict:
    """Check the HTML in ``text`` as a browser would parse it.

    Invalid: truncated markup, stray or crossed end tags, misnesting, content after the
    document; a ``<script src>`` pointing off-site unless ``request`` asks for it (a CDN, or the
    library by name). ``expect_kind="document"`` also requires ``<html>``/``<!DOCTYPE html>``
    and a ``<body>`` with content; ``"fragment"`` or None accepts any markup. Raises ValueError
    for other kinds.
    """
    if expect_kind is not None and expect_kind not in HTML_KINDS:
        raise ValueError(f"unknown HTML kind {expect_kind!r}; known kinds: document, fragment")
    artifact = extract_artifact(text, HTML_LANGUAGES, _START_RE)
    if not artifact:
        return Verdict.fail("", "empty output; expected HTML")
    unencodable = encoding_error(artifact)
    if unencodable is not None:
        return Verdict.fail(artifact, unencodable[0], line=unencodable[1])
    too_deep = _nesting_problem(artifact)
    if too_deep is not None:
        return Verdict.fail(artifact, too_deep[0], line=too_deep[1])
    document, problem = _parse(artifact)
    explicit = re.search(r"<(?:!doctype|html|head|body)[\s>]", artifact, re.IGNORECASE)
    if not explicit and not any(element.tag not in ("html", "head", "body") for element in document.iter()):
        return Verdict.fail(artifact, "no HTML element found; expected HTML markup")
    problem = problem or _script_error(artifact, document, request)
    if problem is None and expect_kind == "document":
        missing = _document_error(artifact, document)
        problem = None if missing is None else (missing, None)
    if problem is not None:
        # The line travels with the problem: read back from the message, it could come from
        # the author's own text (a script src containing "at line 9").
        return Verdict.fail(artifact, problem[0], line=problem[1])
    return Verdict.ok(artifact)
