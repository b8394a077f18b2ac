"""Source-code check: Python is parsed; other languages only need content for now."""

from __future__ import annotations

import ast
import re

from validators.extract import FencedBlock, clean, extract_artifact, find_fences
from validators.verdict import Verdict

# Info-string spellings -> the language name reported in the verdict.
LANGUAGE_ALIASES: dict[str, str] = {
    "py": "python",
    "py3": "python",
    "python3": "python",
    "js": "javascript",
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
# Where Python starts when a model answers without a fence after some prose.
_PYTHON_START_RE = re.compile(r"^(?:#!|import |from \S+ import |def |async def |class |@\w|if __name__)")


def normalize_language(language: str) -> str:
    """Lower-case a language name and resolve aliases ("py" -> "python")."""
    lowered = language.strip().lower()
    return LANGUAGE_ALIASES.get(lowered, lowered)


def _aliases(language: str) -> tuple[str, ...]:
    return (language, *(alias for alias, name in LANGUAGE_ALIASES.items() if name == language))


def _extract(text: str, language: str | None) -> tuple[str, str]:
    """Return (artifact, normalised language)."""
    blocks = find_fences(text)
    if language is not None:
        lang = normalize_language(language)
        if blocks:
            return extract_artifact(text, _aliases(lang)), lang
        return _unfenced(text, lang), lang
    # No language requested: trust the first tagged fence.
    chosen: FencedBlock | None = next((b for b in blocks if b.language), None)
    if chosen is None and blocks:
        chosen = blocks[0]
    if chosen is None:
        return _unfenced(text, DEFAULT_LANGUAGE), DEFAULT_LANGUAGE
    language = normalize_language(chosen.language) if chosen.language else DEFAULT_LANGUAGE
    return clean(chosen.body), language


def _unfenced(text: str, language: str) -> str:
    """Use the whole answer, unless only dropping a prose preamble makes Python parse."""
    whole = clean(text)
    if language != "python" or _python_error(whole) is None:
        return whole
    trimmed = extract_artifact(text, (), _PYTHON_START_RE)
    return trimmed if trimmed and _python_error(trimmed) is None else whole


def _python_error(source: str) -> str | None:
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return f"SyntaxError at line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        return f"invalid Python source: {exc}"
    return None


def check_code(text: str, *, language: str | None = None) -> Verdict:
    """Check source code in ``text``.

    The language is ``language`` if given, else the chosen fence's info string,
    else Python. Python must parse with ``ast``; other languages are valid when
    non-empty (tree-sitter checks come later). ``Verdict.language`` holds the
    normalised language.
    """
    artifact, lang = _extract(text, language)
    if not artifact:
        return Verdict.fail("", f"empty output; expected {lang} code", language=lang)
    if lang == "python":
        error = _python_error(artifact)
        if error is not None:
            return Verdict.fail(artifact, error, language=lang)
    return Verdict.ok(artifact, language=lang)
