"""Each language's own parser: ``ast`` for Python, tree-sitter grammars for the others, json/yaml."""

from __future__ import annotations

import ast
import functools
import json
import threading
import time
import warnings
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

from validators.extract import encoding_error

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
# How long one tree-sitter parse may take. Error recovery is quadratic on some degenerate input
# ("<div>" * 20_000 as Bash took 15 s), and a check runs on the event loop.
TREE_SITTER_SECONDS = 2.0
_CHUNK = 1 << 16


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
        # Compile-time warnings (an invalid escape such as "\d") are not syntax errors: silenced,
        # they neither reach stderr on every check nor turn into errors where warnings are errors.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
    except SyntaxError as exc:
        if not exc.lineno:  # e.g. "source code string cannot contain null bytes"
            return SyntaxProblem(f"SyntaxError: {exc.msg}", None, None)
        return SyntaxProblem.at(f"SyntaxError at line {exc.lineno}: {exc.msg}", source, exc.lineno)
    except ValueError as exc:  # e.g. a lone surrogate, which the parser cannot encode
        return SyntaxProblem(f"invalid Python source: {exc}", None, None)
    except (MemoryError, RecursionError):
        # CPython's parser runs out of stack on deeply nested input ("-" * 100_000 + "1") and
        # says so with MemoryError; the code is unusable either way.
        return SyntaxProblem("Python cannot parse this: it is nested too deeply", None, None)
    return None


def json_problem(source: str) -> tuple[str, int | None] | None:
    """What ``json.loads`` finds wrong with ``source``, and the line, or None for valid JSON.

    Besides JSONDecodeError, json raises ValueError for an integer of over 4300 digits and
    RecursionError for deep nesting: both are answers about the text, not crashes.
    """
    try:
        json.loads(source)
    except json.JSONDecodeError as exc:
        return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", exc.lineno
    except ValueError as exc:
        return f"invalid JSON: {exc}", None
    except RecursionError:
        return "invalid JSON: it is nested too deeply to parse", None
    return None


def _json_error(source: str) -> SyntaxProblem | None:
    problem = json_problem(source)
    return None if problem is None else SyntaxProblem.at(problem[0], source, problem[1])


def _yaml_error(source: str) -> SyntaxProblem | None:
    try:
        # compose, not load: a syntax check must accept any tag (CloudFormation's !Ref, ...)
        # that safe_load has no constructor for; several "---" documents are fine too.
        documents = list(yaml.compose_all(source, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f" at line {line}" if line is not None else ""
        return SyntaxProblem.at(
            f"invalid YAML{where}: {exc.problem or exc.context or 'cannot parse'}", source, line
        )
    except yaml.YAMLError as exc:
        return SyntaxProblem(f"invalid YAML: {exc}", None, None)
    except RecursionError:
        return SyntaxProblem("invalid YAML: it is nested too deeply to parse", None, None)
    # Almost any prose is a valid YAML scalar ("I cannot help with that."): YAML that holds no
    # mapping or list is not the data or config a YAML request asks for.
    if not any(isinstance(node, yaml.CollectionNode) for node in documents):
        return SyntaxProblem("expected YAML with a mapping or a list, got only plain text", None, None)
    return None


@functools.cache
def _language(language: str) -> tree_sitter.Language:
    return tree_sitter.Language(_GRAMMARS[language]())


_parsers = threading.local()


def _parser(language: str) -> tree_sitter.Parser:
    """The calling thread's parser for `language`.

    A tree-sitter Parser used from two threads at once crashes the process (seen when a check in
    a worker thread outlived its caller and the next check began).
    """
    mine: dict[str, tree_sitter.Parser] = _parsers.__dict__.setdefault("by_language", {})
    if language not in mine:
        mine[language] = tree_sitter.Parser(_language(language))
    return mine[language]


def _problems(root: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """The error and missing nodes under ``root``, in document (pre-)order.

    An explicit stack, not recursion: "<b>" * 5000 as Go is a tree thousands of levels deep,
    and recursing into it raised RecursionError.
    """
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            yield node
        if node.has_error:
            stack.extend(reversed(node.children))


def _parse_tree(language: str, source: str) -> tree_sitter.Tree | None:
    """The syntax tree, or None when the parse ran out of time."""
    parser = _parser(language)
    data = source.encode()  # syntax_error ruled out lone surrogates
    deadline = time.monotonic() + TREE_SITTER_SECONDS
    try:
        # Only a parse that reads through a callback can be cancelled from the progress callback.
        return parser.parse(
            lambda offset, _point: data[offset : offset + _CHUNK],
            progress_callback=lambda *_: time.monotonic() > deadline,
        )
    except ValueError:  # "Parsing failed": cancelled
        parser.reset()  # otherwise the next parse resumes this one
        return None


def _tree_sitter_error(language: str, source: str) -> SyntaxProblem | None:
    tree = _parse_tree(language, source)
    if tree is None:
        message = (
            f"the {language} parser gave up after {TREE_SITTER_SECONDS:g} s; the code could not be checked"
        )
        return SyntaxProblem(message, None, None)
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
    unencodable = encoding_error(source, "the code")
    if unencodable is not None:
        # Not quoting the line: it would carry the unencodable character into every display.
        return SyntaxProblem(unencodable[0], unencodable[1], None)
    if language == "python":
        return python_error(source)
    if language == "json":
        return _json_error(source)
    if language == "yaml":
        return _yaml_error(source)
    return _tree_sitter_error(language, source)
