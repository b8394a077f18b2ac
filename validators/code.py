"""Source-code check: the language from the request or the fence, then that language's parser.

Nothing unparsed passes: code in a language we have no parser for is reported unchecked (never
valid), and a Mermaid diagram or an HTML document that landed in a code request is refused
unless the request asked for that language.
"""

from __future__ import annotations

import dataclasses
import re

from validators.extract import FencedBlock, clean, extract_artifact, find_fences, strip_fence_lines
from validators.html import check_html
from validators.mermaid_header import MERMAID_LANGUAGES, plain_diagram_kind
from validators.syntax import PARSED_LANGUAGES, python_error, syntax_error
from validators.verdict import Verdict

# Info-string spellings -> the language name reported in the verdict.
LANGUAGE_ALIASES: dict[str, str] = {
    "py": "python",
    "py3": "python",
    "python3": "python",
    "js": "javascript",
    "jsx": "javascript",
    "mjs": "javascript",
    "cjs": "javascript",
    "node": "javascript",
    "ts": "typescript",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "rs": "rust",
    "golang": "go",
    "c++": "cpp",
    "cc": "cpp",
    "cxx": "cpp",
    "hpp": "cpp",
    "h": "c",
    "cs": "csharp",
    "c#": "csharp",
    "kt": "kotlin",
    "rb": "ruby",
    "hs": "haskell",
    "yml": "yaml",
    "htm": "html",
    "xhtml": "html",
    "mmd": "mermaid",
    "postgresql": "sql",
    "postgres": "sql",
    "psql": "sql",
    "mysql": "sql",
    "sqlite": "sql",
    "plsql": "sql",
}
DEFAULT_LANGUAGE = "python"
# Fence tags that name no language: the block is taken as the language asked for.
_GENERIC_TAGS = frozenset({"", "text", "txt", "plaintext", "plain", "code", "source"})
# A block of the first language is fine when the second was asked for (TypeScript parses JS,
# and JSON is YAML).
_COMPATIBLE = frozenset(
    {("javascript", "typescript"), ("typescript", "tsx"), ("javascript", "tsx"), ("json", "yaml")}
)
# Where Python starts when a model answers without a fence after some prose.
_PYTHON_START_RE = re.compile(r"^(?:#!|import |from \S+ import |def |async def |class |@\w|if __name__)")
# How requests name a programming language. Words that are also English ("go", "swift", "ruby")
# count only capitalised, and "Go"/"C" only next to a programming word.
_REQUEST_LANGUAGES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("typescript", re.compile(r"\btypescript\b", re.IGNORECASE)),
    ("javascript", re.compile(r"\b(?:javascript|node\.?js)\b", re.IGNORECASE)),
    ("python", re.compile(r"\bpython\b", re.IGNORECASE)),
    ("java", re.compile(r"\bjava\b(?!\s*script)", re.IGNORECASE)),
    (
        "go",
        re.compile(r"\bgolang\b|\bin Go\b|\bGo (?:function|program|code|module|package|service|server|CLI)"),
    ),
    ("rust", re.compile(r"\brust\b", re.IGNORECASE)),
    ("bash", re.compile(r"\b(?:bash|shell script|sh script)\b", re.IGNORECASE)),
    # Languages without a parser here: named, their code is reported unchecked rather than
    # parsed as Python (the default) and failed with a misleading Python syntax error.
    ("cpp", re.compile(r"\bc\+\+(?!\w)|\bcpp\b", re.IGNORECASE)),
    ("csharp", re.compile(r"\bc#(?!\w)|\bc ?sharp\b", re.IGNORECASE)),
    ("c", re.compile(r"\bin C\b(?![+#])|\bC (?:function|program|code|library|header|file)\b")),
    ("haskell", re.compile(r"\bhaskell\b", re.IGNORECASE)),
    ("kotlin", re.compile(r"\bkotlin\b", re.IGNORECASE)),
    ("scala", re.compile(r"\bscala\b", re.IGNORECASE)),
    ("php", re.compile(r"\bphp\b", re.IGNORECASE)),
    ("perl", re.compile(r"\bperl\b", re.IGNORECASE)),
    ("lua", re.compile(r"\blua\b", re.IGNORECASE)),
    ("elixir", re.compile(r"\belixir\b", re.IGNORECASE)),
    ("powershell", re.compile(r"\bpowershell\b", re.IGNORECASE)),
    ("ruby", re.compile(r"\bRuby\b")),
    ("swift", re.compile(r"\bSwift\b")),
)
# Data, query and markup languages. A request that also names a programming language is about
# the program ("a Python script that writes YAML"); only alone do these decide.
_REQUEST_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("json", re.compile(r"\bjson\b", re.IGNORECASE)),
    ("yaml", re.compile(r"\bya?ml\b", re.IGNORECASE)),
    ("sql", re.compile(r"\b(?:sql|postgres(?:ql)?|mysql|sqlite)\b", re.IGNORECASE)),
    ("html", re.compile(r"\bx?html5?\b", re.IGNORECASE)),
    ("mermaid", re.compile(r"\bmermaid\b", re.IGNORECASE)),
)
# An HTML document, as opposed to a fragment a program might hold: what a code request must not get.
_HTML_DOCUMENT_RE = re.compile(r"\s*<(?:!doctype\s+html\b|html(?:[\s>]|$))", re.IGNORECASE)


def normalize_language(language: str) -> str:
    """Lower-case a language name and resolve aliases ("py" -> "python")."""
    lowered = language.strip().lower()
    return LANGUAGE_ALIASES.get(lowered, lowered)


def _one_named(request: str, patterns: tuple[tuple[str, re.Pattern[str]], ...]) -> str | None:
    named = {language for language, pattern in patterns if pattern.search(request)}
    return named.pop() if len(named) == 1 else None


def language_from_request(request: str | None) -> str | None:
    """The language a request names ("a Rust CLI that ...", "the SQL schema of ..."), else None.

    One programming language named decides; several make it ambiguous (None). Only when none is
    named does a single data, query or markup language (JSON, YAML, SQL, HTML, Mermaid) decide.
    """
    if not request:
        return None
    if any(pattern.search(request) for _, pattern in _REQUEST_LANGUAGES):
        return _one_named(request, _REQUEST_LANGUAGES)
    return _one_named(request, _REQUEST_FORMATS)


def _pick(blocks: list[FencedBlock], requested: str | None) -> FencedBlock:
    """The block of the requested language, else an untagged one, else the first (tagged) one."""
    if requested is not None:
        for block in blocks:
            if normalize_language(block.language) == requested:
                return block
        return next((b for b in blocks if b.language in _GENERIC_TAGS), blocks[0])
    return next((b for b in blocks if b.language), blocks[0])


def _extract(text: str, requested: str | None) -> tuple[str, str, str]:
    """Return (artifact, language, the chosen fence's own language: "" when unfenced or untagged)."""
    blocks = find_fences(text)
    if not blocks:
        language = requested or DEFAULT_LANGUAGE
        return _unfenced(text, language), language, ""
    block = _pick(blocks, requested)
    fence = normalize_language(block.language)
    fence = "" if fence in _GENERIC_TAGS else fence
    return clean(block.body), requested or fence or DEFAULT_LANGUAGE, fence


def _unfenced(text: str, language: str) -> str:
    """Use the whole answer, unless only dropping a prose preamble makes Python parse."""
    whole = strip_fence_lines(text)
    if language != "python" or python_error(whole) is None:
        return whole
    trimmed = extract_artifact(text, (), _PYTHON_START_RE)
    return trimmed if trimmed and python_error(trimmed) is None else whole


def _other_artifact(artifact: str, fence: str) -> tuple[str, str] | None:
    """(language, what it is) when the artifact is plainly not code but a diagram or a page."""
    kind = plain_diagram_kind(artifact)
    if kind is not None or fence in MERMAID_LANGUAGES:
        return "mermaid", f"a Mermaid {kind} diagram" if kind else "a Mermaid diagram"
    if _HTML_DOCUMENT_RE.match(artifact):
        return "html", "an HTML document"
    return None


def _unchecked(artifact: str, language: str) -> Verdict:
    verdict = Verdict.fail(artifact, f"no parser for {language}: the code was not checked", language=language)
    return dataclasses.replace(verdict, checked=False)


def check_code(text: str, *, language: str | None = None, request: str | None = None) -> Verdict:
    """Check source code in ``text``.

    The language is ``language`` if given, else the one ``request`` names, else the chosen
    fence's info string, else Python. Invalid: a fence of another language than the one asked
    for, and a Mermaid diagram or an HTML document unless that language was asked for.
    Python, JavaScript, TypeScript, Java, Go, Rust, Bash, JSON and YAML are parsed, and HTML
    goes through the HTML check; code in any other language (SQL, C, Haskell, ...) is reported
    unchecked (``checked=False``, never valid). ``Verdict.language`` holds the normalised language.
    """
    requested = normalize_language(language) if language else language_from_request(request)
    artifact, lang, fence = _extract(text, requested)
    if not artifact:
        return Verdict.fail("", f"empty output; expected {lang} code", language=lang)
    other = _other_artifact(artifact, fence)
    if other is not None and other[0] != requested:
        expected = f"{requested} code" if requested else "source code"
        return Verdict.fail(artifact, f"expected {expected}, got {other[1]}", language=requested)
    if requested is not None and fence and fence != requested and (fence, requested) not in _COMPATIBLE:
        return Verdict.fail(artifact, f"expected {lang} code, got a {fence} block", language=lang)
    if lang == "html":
        return dataclasses.replace(check_html(artifact, request=request), language="html")
    if lang not in PARSED_LANGUAGES:
        return _unchecked(artifact, lang)
    problem = syntax_error(lang, artifact)
    if problem is not None:
        return Verdict.fail(
            artifact, problem.message, language=lang, line=problem.line, details=problem.details
        )
    return Verdict.ok(artifact, language=lang)
