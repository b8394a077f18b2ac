"""Property-based tests: every validator answers any text with a well-formed Verdict, in bounded time.

A validator that raises turns one bad model reply into a crashed request; one that hangs stalls
it. Each property below runs a check on arbitrary text (plus strategies that mix what model
replies are made of: fences, diagram headers, HTML tags, JSON fragments, NULs, lone surrogates,
very long lines) and requires a Verdict whose invariants hold. Every crash these tests found is
kept as an ``@example`` on the property that found it.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import threading
import warnings
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from validators import (
    Validators,
    Verdict,
    check_code,
    check_documentation,
    check_html,
    check_jira,
    check_mermaid_header,
    extract_artifact,
    find_fences,
)
from validators.extract import clean, is_fence_line, strip_fence_lines
from validators.syntax import PARSED_LANGUAGES, syntax_error

# Wall-clock bound of one check. Generous (a loaded CI machine), yet far below what a hang or a
# quadratic blow-up on a 20 000-character line would take.
CHECK_SECONDS = 10.0
# The Mermaid check includes a round trip to the Node worker, and a restart if a diagram killed it.
MERMAID_SECONDS = 30.0

# Examples are cheap for the pure-Python validators; deadline=None because timing is bounded
# by CHECK_SECONDS instead (hypothesis' deadline flakes on a busy machine), and too_slow is
# suppressed because the long-line strategy is slow to generate on purpose.
# MODELYARD_FUZZ_SCALE=20 runs twenty times the examples, for a deliberate bug hunt.
_SCALE = max(1, int(os.environ.get("MODELYARD_FUZZ_SCALE", "1")))
FAST = settings(max_examples=200 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MERMAID = settings(max_examples=50 * _SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- what model replies are made of ---------------------------------------------------------

FENCES = st.sampled_from(
    ["```", "````", "~~~", "```mermaid", "```python", "```html", "```json", "```md", "```markdown",
     "   ```js", "```{.py}", "``` ```", "```yaml", "```haskell", "```sql", "```bash", "```ts"]
)  # fmt: skip
HEADERS = st.sampled_from(
    ["erDiagram", "flowchart TD", "graph LR", "sequenceDiagram", "pie title Pets", "---", "%%{init: {",
     "}%%", "%% note", "stateDiagram-v2", "classDiagram", "gantt", "C4Context", "block-beta", "  A --> B",
     "  CUSTOMER ||--o{ ORDER : places", "end", "  Alice->>Bob: Hi"]
)  # fmt: skip
TAGS = st.sampled_from(
    ["<!DOCTYPE html>", "<html>", "</html>", "<head>", "<body>", "</body>", "<div>", "</div>", "<p>",
     "<span>", "</span>", "<script src='//cdn.example/lib.js'>", "<script src=\"//[x\">", "</script>",
     "<a(>", "<x[y>", "<table><tr>", "<!--", "-->", "<", ">", "<br/>", "</p>", "<li>"]
)  # fmt: skip
JSON_BITS = st.sampled_from(
    ["{", "}", "[", "]", '"summary": "s"', '"description": "d"', ",", ":", "null", "1e999", "9" * 40,
     '"tasks":', '"\\ud800"', "\\", '"story_points": "5"', '"acceptance_criteria": "x"', "true"]
)  # fmt: skip
SPECIAL = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\r", "\r\n", "\u2028", "\x0b", "\x0c", "\x85", "\t", "    ", "\ufeff",
     "#", "# Title", "def f(:", "if x:", "fn main() {", "\\", "import os", "'\\d'", "$((", "<<EOF"]
)  # fmt: skip
LONG = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["x", "(", "[", "{", "-", "a ", "`", "<b>", "\u2028", "\\", "|"]),
    st.integers(1_000, 20_000),
)
PIECES = st.one_of(st.text(max_size=30), FENCES, HEADERS, TAGS, JSON_BITS, SPECIAL)


def replies(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Multi-line texts whose lines are made of ``pieces``."""
    line = st.lists(pieces, max_size=5).map("".join)
    return st.lists(line, max_size=25).map("\n".join)


TEXTS = st.one_of(st.text(), replies(st.one_of(PIECES, LONG)))
# The Mermaid worker gets no 20 000-character lines: each costs Node real time, and the
# pure-Python part of the check (extraction, header rules) is fuzzed with them already.
MERMAID_TEXTS = st.one_of(st.text(), replies(PIECES))
REQUESTS = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.sampled_from(
        ["write a Python function", "a Rust CLI", "the SQL schema", "write the HTML page", "a Haskell parser",
         "a Mermaid ERD", "JSON config", "use the jquery CDN", "in Go", "a C program", "YAML and JSON"]
    ),
)  # fmt: skip
LANGUAGES = st.one_of(
    st.none(),
    st.sampled_from(sorted(PARSED_LANGUAGES)),
    st.sampled_from(["py", "js", "ts", "sh", "yml", "html", "mermaid", "sql", "haskell", "c++", "text", ""]),
)

# --- the invariants and the bound ------------------------------------------------------------


def assert_well_formed(verdict: object) -> None:
    """What every consumer of a Verdict relies on."""
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.artifact, str)
    assert verdict.valid is (verdict.error is None)  # valid XOR error
    if not verdict.checked:
        assert not verdict.valid
    if verdict.valid:
        assert verdict.artifact.strip(), "a valid verdict has an artifact"
    else:
        assert isinstance(verdict.error, str) and verdict.error.strip()
    assert verdict.line is None or (isinstance(verdict.line, int) and verdict.line >= 1)
    for field in (verdict.diagram_type, verdict.language, verdict.warning, verdict.details):
        assert field is None or isinstance(field, str)
    assert verdict.summary is None or len(verdict.summary) <= 160
    assert (verdict.full_error is None) is verdict.valid
    json.dumps(verdict.to_dict())  # graph state and logs take it as JSON


def bounded(check: Callable[[], Verdict], seconds: float = CHECK_SECONDS) -> Verdict:
    """Run ``check`` and fail, instead of hanging, when it has not returned after ``seconds``.

    A daemon thread, so that a hung check fails this test and the run goes on (it cannot be
    killed, but it cannot keep the process alive either).
    """
    outcome: list[Verdict] = []
    raised: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(check())
        except BaseException as exc:  # re-raised below, in the test's own thread
            raised.append(exc)

    thread = threading.Thread(target=run, name="bounded-check", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the check did not return within {seconds:g} s")
    if raised:
        raise raised[0]
    assert_well_formed(outcome[0])
    return outcome[0]


# --- extraction ---------------------------------------------------------------------------------


@FAST
@given(TEXTS)
@example("\x0c  a\n  b")
def test_clean_is_stripped_and_idempotent(text: str) -> None:
    once = clean(text)
    assert once == once.strip()
    assert clean(once) == once


@FAST
@given(TEXTS, st.lists(st.sampled_from(["mermaid", "python", "json", "html", "md", ""]), max_size=3))
@example("\t```", [])  # a tab-indented fence was kept, then clean() made it a fence line
def test_extract_artifact_never_raises_and_drops_stray_fences(text: str, languages: list[str]) -> None:
    for pattern in (None, re.compile(r"^\s*(?:erDiagram|flowchart|<)")):
        artifact = extract_artifact(text, languages, pattern)
        assert isinstance(artifact, str)
        assert artifact == artifact.strip()
        lines = artifact.splitlines()
        if lines:
            assert not is_fence_line(lines[0]) and not is_fence_line(lines[-1])


@FAST
@given(TEXTS)
def test_find_fences_blocks_are_ordered_and_inside_the_text(text: str) -> None:
    count = len(text.splitlines())
    previous_end = 0
    for block in find_fences(text):
        assert previous_end < block.start_line <= block.end_line <= count
        previous_end = block.end_line


# Prose and bodies that cannot open or close a fence themselves.
_NO_FENCE = st.text(st.characters(blacklist_characters="`~", blacklist_categories=["Cs"]), max_size=200)


@FAST
@given(_NO_FENCE, _NO_FENCE, _NO_FENCE, st.sampled_from(["mermaid", "python", "json"]))
def test_extract_artifact_returns_the_fenced_body(before: str, body: str, after: str, language: str) -> None:
    text = f"{before}\n```{language}\n{body}\n```\n{after}"
    assert extract_artifact(text, (language,)) == strip_fence_lines("\n".join(body.splitlines()))


# --- the validators, one property each ------------------------------------------------------------


@FAST
@given(TEXTS, LANGUAGES, REQUESTS)
@example("```js\nconst s = '\ud800';\n```", None, None)  # UnicodeEncodeError in tree-sitter
@example("[" + "1" * 5000 + "]", "json", None)  # ValueError: integer string conversion limit
@example("[" * 100_000, "json", None)  # RecursionError in json
@example("[" * 100_000, "yaml", None)  # RecursionError in yaml
@example("x = " + "-" * 100_000 + "1", "python", None)  # MemoryError in Python's parser
@example("<a(>", "html", None)  # re.error through the HTML check
@example("<b>" * 2000 + "<B>" * 1000, "go", None)  # RecursionError walking tree-sitter's error nodes
@example("'\\8'", None, None)  # valid Python that only warns (invalid escape)
def test_check_code_answers_anything(text: str, language: str | None, request: str | None) -> None:
    verdict = bounded(lambda: check_code(text, language=language, request=request))
    if verdict.valid and verdict.language in PARSED_LANGUAGES:
        # Valid means the language's own parser accepts exactly what the user receives.
        assert syntax_error(verdict.language, verdict.artifact) is None
        if verdict.language == "python":
            with warnings.catch_warnings():  # "\\8" only warns; this suite makes warnings errors
                warnings.simplefilter("ignore")
                ast.parse(verdict.artifact)
        if verdict.language == "json":
            json.loads(verdict.artifact)
    if not verdict.checked:
        assert verdict.language is not None and verdict.language not in PARSED_LANGUAGES
        assert verdict.language != "html"


@FAST
@given(TEXTS, st.sampled_from([None, "document", "fragment"]), REQUESTS)
@example("<a(>", None, None)  # re.error: the tag name was used as a pattern
@example('<script src="https://[x/jquery.js"></script>', None, "use jquery")  # ValueError: Invalid IPv6 URL
@example('<p>x</p>\n<script src="//x/at line ' + "9" * 5000 + '"></script>', None, None)  # int() limit
@example("<p>\ud800</p>", "document", None)
def test_check_html_answers_anything(text: str, expect_kind: str | None, request: str | None) -> None:
    verdict = bounded(lambda: check_html(text, expect_kind=expect_kind, request=request))
    if verdict.valid and expect_kind == "document":
        # A complete document is also acceptable markup.
        assert bounded(lambda: check_html(text, request=request)).valid


@FAST
@given(TEXTS)
@example("# Title\n\ud800")
def test_check_documentation_answers_anything(text: str) -> None:
    verdict = bounded(lambda: check_documentation(text))
    if verdict.valid:
        assert bounded(lambda: check_documentation(verdict.artifact)).valid


_TASK_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["summary", "description", "acceptance_criteria", "story_points", "tasks", "x"]),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
).map(json.dumps)


@FAST
@given(st.one_of(TEXTS, _TASK_JSON, replies(JSON_BITS)))
@example("[" + "1" * 5000 + "]")  # ValueError: integer string conversion limit
@example("[" * 100_000)  # RecursionError in json
def test_check_jira_answers_anything(text: str) -> None:
    verdict = bounded(lambda: check_jira(text))
    if verdict.valid:
        tasks = json.loads(verdict.artifact)
        assert isinstance(tasks, list) and tasks
        assert all(task["summary"].strip() and task["description"].strip() for task in tasks)
        # The normalised list is a fixed point: checking it again changes nothing.
        assert bounded(lambda: check_jira(verdict.artifact)).artifact == verdict.artifact


@FAST
@given(TEXTS, st.sampled_from([None, "er", "flowchart", "sequence", "erd", "stateDiagram"]))
@example("flowchart TD\n  A[\ud800] --> B", None)
def test_check_mermaid_header_answers_anything(text: str, expect_kind: str | None) -> None:
    verdict = bounded(lambda: check_mermaid_header(text, expect_kind=expect_kind))
    if verdict.valid:
        assert verdict.diagram_type is not None


@MERMAID
@given(MERMAID_TEXTS, st.sampled_from([None, "er", "flowchart", "sequence"]))
@example("flowchart TD\n  A[\ud800] --> B", None)
@example("flowchart TD\n  A[\x00] --> B", None)
async def test_the_mermaid_parser_answers_anything(text: str, expect_kind: str | None) -> None:
    # The real parser in the session's warm Node worker (tests/conftest.py keeps it leased).
    async with Validators() as validators:
        verdict = await asyncio.wait_for(
            validators.check("mermaid", text, expect_kind=expect_kind), MERMAID_SECONDS
        )
    assert_well_formed(verdict)
    assert verdict.warning is None, verdict.warning  # the parser ran: Node is installed here
    if verdict.valid:
        assert verdict.diagram_type is not None
