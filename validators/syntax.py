"""Each language's own parser: ``ast`` for Python, tree-sitter grammars for the others, json/yaml."""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import tree_sitter
import tree_sitter_bash
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_rust
import tree_sitter_typescript
import yaml

# Grammar capsules of the tree-sitter packages installed with modelyard.
_GRAMMARS: dict[str, Callable[[], Any]] = {
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "java": tree_sitter_java.language,
    "go": tree_sitter_go.language,
    "rust": tree_sitter_rust.language,
    "bash": tree_sitter_bash.language,
}
PARSED_LANGUAGES = frozenset({"python", "json", "yaml", *_GRAMMARS})


@dataclass(frozen=True)
class SyntaxProblem:
    """The first syntax error in a source file."""

    message: str
    line: int | None
    details: str | None
    """The offending line, as "  3 | source"."""

    @classmethod
    def at(cls, message: str, source: str, line: int | None) -> SyntaxProblem:
        """A problem at ``line`` (1-based) of ``source``, quoting that line."""
        lines = source.splitlines()
        quoted = f"  {line} | {lines[line - 1]}" if line is not None and 0 < line <= len(lines) else None
        return cls(message, line, quoted)


def python_error(source: str) -> SyntaxProblem | None:
    """Python's own verdict: None, or "SyntaxError at line N: message"."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return SyntaxProblem.at(f"SyntaxError at line {exc.lineno}: {exc.msg}", source, exc.lineno)
    except ValueError as exc:  # e.g. "source code string cannot contain null bytes"
        return SyntaxProblem(f"invalid Python source: {exc}", None, None)
    return None


def _json_error(source: str) -> SyntaxProblem | None:
    try:
        json.loads(source)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        return SyntaxProblem.at(message, source, exc.lineno)
    return None


def _yaml_error(source: str) -> SyntaxProblem | None:
    try:
        yaml.safe_load(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        return SyntaxProblem.at(f"invalid YAML at line {line}: {exc.problem}", source, line)
    except yaml.YAMLError as exc:
        return SyntaxProblem(f"invalid YAML: {exc}", None, None)
    return None


@functools.cache
def _parser(language: str) -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(_GRAMMARS[language]()))


def _problems(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    if node.is_error or node.is_missing:
        yield node
    if node.has_error:
        for child in node.children:
            yield from _problems(child)


def _tree_sitter_error(language: str, source: str) -> SyntaxProblem | None:
    tree = _parser(language).parse(source.encode())
    if not tree.root_node.has_error:
        return None
    # The earliest problem; among problems starting there, the innermost (it names the token).
    found = list(enumerate(_problems(tree.root_node))) or [(0, tree.root_node)]
    first = min(found, key=lambda pair: (tuple(pair[1].start_point), not pair[1].is_missing, -pair[0]))[1]
    row, column = first.start_point
    if first.is_missing:
        what = f"missing {first.type!r}"
    else:
        text = (first.text or b"").decode(errors="replace").strip().splitlines()
        what = f"cannot parse {text[0][:40]!r}" if text else "cannot parse the input"
    message = f"{language} syntax error at line {row + 1}, column {column + 1}: {what}"
    return SyntaxProblem.at(message, source, row + 1)


def syntax_error(language: str, source: str) -> SyntaxProblem | None:
    """The first syntax error of ``source`` in ``language`` (one of PARSED_LANGUAGES), or None."""
    if language == "python":
        return python_error(source)
    if language == "json":
        return _json_error(source)
    if language == "yaml":
        return _yaml_error(source)
    return _tree_sitter_error(language, source)
