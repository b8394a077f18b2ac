"""Source-code check: the language from the request or the fence, then that language's parser."""

from __future__ import annotations

import re

from validators.extract import FencedBlock, clean, extract_artifact, find_fences, strip_fence_lines
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
    "cs": "csharp",
    "c#": "csharp",
    "kt": "kotlin",
    "rb": "ruby",
    "yml": "yaml",
}
DEFAULT_LANGUAGE = "python"
# Fence tags that name no language: the block is taken as the language asked for.
_GENERIC_TAGS = frozenset({"", "text", "txt", "plaintext", "plain", "code", "source"})
# A block of the first language is fine when the second was asked for (TypeScript parses JS).
_COMPATIBLE = frozenset({("javascript", "typescript"), ("typescript", "tsx"), ("javascript", "tsx")})
# Where Python starts when a model answers without a fence after some prose.
_PYTHON_START_RE = re.compile(r"^(?:#!|import |from \S+ import |def |async def |class |@\w|if __name__)")
# How requests name a language. "Go" only capitalised and next to a programming word: "go" is English.
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
)


def normalize_language(language: str) -> str:
    """Lower-case a language name and resolve aliases ("py" -> "python")."""
    lowered = language.strip().lower()
    return LANGUAGE_ALIASES.get(lowered, lowered)


def language_from_request(request: str | None) -> str | None:
    """The one programming language a request names ("a Rust CLI that ..."), else None."""
    if not request:
        return None
    named = {language for language, pattern in _REQUEST_LANGUAGES if pattern.search(request)}
    return named.pop() if len(named) == 1 else None


def _pick(blocks: list[FencedBlock], requested: str | None) -> FencedBlock:
    """The block of the requested language, else an untagged one, else the first (tagged) one."""
    if requested is not None:
        for block in blocks:
            if normalize_language(block.language) == requested:
                return block
        return next((b for b in blocks if b.language in _GENERIC_TAGS), blocks[0])
    return next((b for b in blocks if b.language), blocks[0])


def _extract(text: str, requested: str | None) -> tuple[str, str, str | None]:
    """Return (artifact, language, the fence's own language when it contradicts the request)."""
    blocks = find_fences(text)
    if not blocks:
        language = requested or DEFAULT_LANGUAGE
        return _unfenced(text, language), language, None
    block = _pick(blocks, requested)
    fence = normalize_language(block.language)
    if requested is None:
        return clean(block.body), DEFAULT_LANGUAGE if fence in _GENERIC_TAGS else fence, None
    conflict = fence not in _GENERIC_TAGS and fence != requested and (fence, requested) not in _COMPATIBLE
    return clean(block.body), requested, fence if conflict else None


def _unfenced(text: str, language: str) -> str:
    """Use the whole answer, unless only dropping a prose preamble makes Python parse."""
    whole = strip_fence_lines(text)
    if language != "python" or python_error(whole) is None:
        return whole
    trimmed = extract_artifact(text, (), _PYTHON_START_RE)
    return trimmed if trimmed and python_error(trimmed) is None else whole


def check_code(text: str, *, language: str | None = None, request: str | None = None) -> Verdict:
    """Check source code in ``text``.

    The language is ``language`` if given, else the one ``request`` names, else the chosen
    fence's info string, else Python. A fence of another language than the one asked for is
    invalid. Python, JavaScript, TypeScript, Java, Go, Rust, Bash, JSON and YAML are parsed;
    other languages are accepted when non-empty, with a warning that nothing parsed them.
    ``Verdict.language`` holds the normalised language.
    """
    requested = normalize_language(language) if language else language_from_request(request)
    artifact, lang, conflict = _extract(text, requested)
    if not artifact:
        return Verdict.fail("", f"empty output; expected {lang} code", language=lang)
    if conflict is not None:
        return Verdict.fail(artifact, f"expected {lang} code, got a {conflict} block", language=lang)
    if lang not in PARSED_LANGUAGES:
        return Verdict.ok(artifact, language=lang).with_warning(
            f"no {lang} parser installed; syntax not checked"
        )
    problem = syntax_error(lang, artifact)
    if problem is not None:
        return Verdict.fail(
            artifact, problem.message, language=lang, line=problem.line, details=problem.details
        )
    return Verdict.ok(artifact, language=lang)
