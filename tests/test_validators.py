import json
import re
import time
from typing import Any

import pytest

from validators import (
    JiraTask,
    JiraTaskList,
    Validators,
    Verdict,
    check_code,
    check_documentation,
    check_html,
    check_jira,
    check_mermaid_header,
    extract_artifact,
    language_from_request,
)

FLOW = "flowchart TD\n  A[Start] --> B{Ok?}\n  B -->|yes| C[Done]"
ERD = "erDiagram\n  CUSTOMER ||--o{ ORDER : places\n  ORDER ||--|{ LINE_ITEM : contains"
HEADER = re.compile(r"^(flowchart|erDiagram)\b")


# --- extraction -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "languages", "pattern", "expected"),
    [
        pytest.param(
            "Sure! Here is the diagram:\n\n```mermaid\nflowchart TD\n  A --> B\n```\n\nHope it helps.",
            ("mermaid",),
            None,
            "flowchart TD\n  A --> B",
            id="prose-preamble-and-chatter",
        ),
        pytest.param(
            "```text\nnotes\n```\n```Mermaid\nflowchart LR\n  A --> B\n```",
            ("mermaid",),
            None,
            "flowchart LR\n  A --> B",
            id="prefers-tagged-fence-case-insensitive",
        ),
        pytest.param(
            "Explanation first\n~~~\nflowchart TD\n  A --> B\n~~~\nbye",
            ("mermaid",),
            None,
            "flowchart TD\n  A --> B",
            id="only-untagged-tilde-fence",
        ),
        pytest.param(
            "```python\nprint(1)\n```\n\nand also\n\n```\nflowchart TD\n  A --> B\n```",
            ("mermaid",),
            HEADER,
            "flowchart TD\n  A --> B",
            id="two-foreign-fences-header-picks",
        ),
        pytest.param(
            "Here you go:\n```mermaid\nerDiagram\n  A ||--o{ B : has\n  B ||--",
            ("mermaid",),
            None,
            "erDiagram\n  A ||--o{ B : has\n  B ||--",
            id="unclosed-final-fence",
        ),
        pytest.param(
            "Here is the diagram you asked for.\n\nflowchart TD\n  A --> B",
            ("mermaid",),
            HEADER,
            "flowchart TD\n  A --> B",
            id="no-fence-header-pattern",
        ),
        pytest.param("  \n plain answer \n", ("mermaid",), HEADER, "plain answer", id="no-fence-no-header"),
        pytest.param("", ("json",), None, "", id="empty"),
        pytest.param(
            "1. Code:\n   ```py\n   def f():\n       return 1\n   ```",
            ("python", "py"),
            None,
            "def f():\n    return 1",
            id="indented-fence-dedented",
        ),
    ],
)
def test_extract_artifact(
    text: str, languages: tuple[str, ...], pattern: re.Pattern[str] | None, expected: str
) -> None:
    result = extract_artifact(text, languages, pattern)
    assert result == expected
    assert not any(line.lstrip().startswith(("```", "~~~")) for line in result.splitlines())


# --- mermaid: the header-only check (the parser is tested in test_mermaid_worker.py) ---


@pytest.mark.parametrize(
    ("text", "expect_kind", "diagram_type", "artifact"),
    [
        pytest.param(f"```mermaid\n{FLOW}\n```", None, "flowchart", FLOW, id="fenced-flowchart"),
        pytest.param(
            f"Sure, here is the ERD:\n```mermaid\n{ERD}\n```\nAnything else?", "er", "er", ERD, id="erd"
        ),
        pytest.param(
            "graph LR\n  A -> B", None, "flowchart", "graph LR\n  A -> B", id="header-only-misses-bad-arrow"
        ),
        pytest.param(
            "%%{init: {'theme': 'dark'}}%%\nsequenceDiagram\n  Alice->>Bob: Hi",
            "sequence",
            "sequence",
            None,
            id="init-directive",
        ),
        pytest.param(
            "---\ntitle: Orders\nconfig:\n  theme: forest\n---\n%% comment\n"
            "%%{init: {\n  'theme': 'dark'\n}}%%\nclassDiagram\n  class Order",
            "class",
            "class",
            None,
            id="front-matter-comment-multiline-init",
        ),
        pytest.param("stateDiagram-v2\n  [*] --> Idle", "stateDiagram", "state", None, id="state-v2"),
        pytest.param(
            "architecture-beta\n  service db(database)[DB]",
            "architecture",
            "architecture",
            None,
            id="architecture",
        ),
        pytest.param('pie title Pets\n  "Dogs" : 386', None, "pie", None, id="pie-with-title"),
        pytest.param("```\nmindmap\n  root((x))\n```", None, "mindmap", None, id="untagged-fence"),
        pytest.param(f"```mermaid\n{ERD}", "erd", "er", ERD, id="unclosed-fence-alias-kind"),
        pytest.param(
            "```mermaid\n```mermaid\nflowchart TD\n  A --> B\n```",
            None,
            "flowchart",
            "flowchart TD\n  A --> B",
            id="doubled-opening-fence-dropped",
        ),
        pytest.param(
            "flowchart TD\n  A --> B\n```",
            None,
            "flowchart",
            "flowchart TD\n  A --> B",
            id="stray-closing-fence",
        ),
        pytest.param(
            "```mermaid\nHere is your diagram:\n%%{init: {'theme': 'dark'}}%%\nflowchart TD\n  A --> B\n```",
            None,
            "flowchart",
            "%%{init: {'theme': 'dark'}}%%\nflowchart TD\n  A --> B",
            id="prose-inside-fence-dropped",
        ),
        pytest.param(
            "```mermaid\n---\ntitle: T\n---\nHere it is:\nerDiagram\n  A ||--o{ B : has\n```",
            "er",
            "er",
            "---\ntitle: T\n---\nerDiagram\n  A ||--o{ B : has",
            id="prose-after-front-matter-dropped",
        ),
    ],
)
def test_mermaid_valid(text: str, expect_kind: str | None, diagram_type: str, artifact: str | None) -> None:
    verdict = check_mermaid_header(text, expect_kind=expect_kind)
    assert verdict.valid, verdict.error
    assert verdict.error is None
    assert verdict.diagram_type == diagram_type
    if artifact is not None:
        assert verdict.artifact == artifact


@pytest.mark.parametrize(
    ("text", "expect_kind", "error", "diagram_type"),
    [
        pytest.param(
            f"```mermaid\n{FLOW}\n```",
            "er",
            "expected an er diagram (erDiagram), got flowchart",
            "flowchart",
            id="erd-answered-with-flowchart",
        ),
        pytest.param(
            f"```mermaid\n{ERD}\n```",
            "sequence",
            "expected a sequence diagram (sequenceDiagram), got er",
            "er",
            id="sequence-answered-with-erd",
        ),
        pytest.param(
            "I'm sorry, I can't draw diagrams.",
            None,
            "no Mermaid diagram header found; expected a diagram header such as 'flowchart TD'",
            None,
            id="prose-only",
        ),
        pytest.param(
            "```mermaid\nflowchart TD\n```",
            None,
            "has a header (flowchart TD) but no body",
            "flowchart",
            id="no-body",
        ),
        pytest.param("```mermaid\n```", None, "empty output", None, id="empty-fence"),
        pytest.param(
            "---\ntitle: x\nflowchart TD\n  A --> B",
            None,
            "front-matter '---' opened at line 1",
            None,
            id="unclosed-front-matter",
        ),
        pytest.param(
            "%%{init: {\nflowchart TD\n  A --> B",
            None,
            "directive opened at line 1 is never closed",
            None,
            id="unclosed-init",
        ),
        pytest.param(
            "Graph of services\n  A --> B",
            None,
            "no Mermaid diagram header found",
            None,
            id="prose-graph-word-not-header",
        ),
    ],
)
def test_mermaid_invalid(text: str, expect_kind: str | None, error: str, diagram_type: str | None) -> None:
    verdict = check_mermaid_header(text, expect_kind=expect_kind)
    assert not verdict.valid
    assert verdict.error is not None and error in verdict.error
    assert verdict.diagram_type == diagram_type


def test_mermaid_unfenced_keeps_front_matter() -> None:
    text = "Here it is:\n---\ntitle: Shop\n---\n%%{init: {'theme': 'dark'}}%%\nerDiagram\n  A ||--o{ B : has"
    verdict = check_mermaid_header(text, expect_kind="er")
    assert verdict.valid, verdict.error
    assert verdict.artifact.startswith("---\ntitle: Shop\n---\n%%{init:")


def test_mermaid_unknown_expect_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown Mermaid diagram kind 'uml'"):
        check_mermaid_header(FLOW, expect_kind="uml")


# --- html -----------------------------------------------------------------------

PAGE = (
    "<!DOCTYPE html>\n<html lang='en'>\n<head><meta charset='utf-8'><title>T</title>\n"
    "<style>p > a { color: red; }</style></head>\n<body>\n<ul><li>one<li>two</ul>\n"
    "<p>Hello<br>world<img src='x.png' alt=''/>\n<script>if (a < b && c > d) {}</script>\n</body>\n</html>"
)


@pytest.mark.parametrize(
    ("text", "expect_kind", "artifact"),
    [
        pytest.param(
            f"Here is the page:\n```html\n{PAGE}\n```\nEnjoy!", "document", PAGE, id="fenced-document"
        ),
        pytest.param("<div class='card'>\n  <p>Hi</p>\n</div>", None, None, id="fragment"),
        pytest.param("<div><p>Hi</div>", "fragment", None, id="optional-end-tag-closed-by-parent"),
        pytest.param(
            "Sure! Below is the markup.\n<section><h1>x</h1></section>",
            None,
            "<section><h1>x</h1></section>",
            id="no-fence-preamble",
        ),
        pytest.param("<html><body><p>x</p></body></html>", "document", None, id="no-doctype-document"),
    ],
)
def test_html_valid(text: str, expect_kind: str | None, artifact: str | None) -> None:
    verdict = check_html(text, expect_kind=expect_kind)
    assert verdict.valid, verdict.error
    if artifact is not None:
        assert verdict.artifact == artifact


@pytest.mark.parametrize(
    ("text", "expect_kind", "error"),
    [
        pytest.param(
            "<div>\n  <p>x</p>\n</span>\n</div>",
            None,
            "closing tag </span> at line 3 has no matching <span>",
            id="stray-close",
        ),
        pytest.param(
            "<div>\n<span>x\n</div>",
            None,
            "closing tag </div> at line 3 while an element opened inside <div> is still open",
            id="crossed-tags",
        ),
        pytest.param(
            "```html\n<main>\n  <section>\n    <h1>Title</h1>\n",
            None,
            "tag <main> opened at line 1 is never closed",
            id="truncated",
        ),
        pytest.param("Sorry, I cannot help with that.", None, "no HTML element found", id="prose-only"),
        pytest.param("```html\n```", None, "empty output", id="empty"),
        pytest.param(
            "<div>Just a fragment</div>",
            "document",
            "missing <html> (or <!DOCTYPE html>) and <body>",
            id="document-missing-all",
        ),
        pytest.param(
            "<!DOCTYPE html><html><head></head></html>",
            "document",
            "missing <body>",
            id="document-missing-body",
        ),
    ],
)
def test_html_invalid(text: str, expect_kind: str | None, error: str) -> None:
    verdict = check_html(text, expect_kind=expect_kind)
    assert not verdict.valid
    assert verdict.error is not None and error in verdict.error


def test_html_odd_tag_name_is_not_a_pattern() -> None:
    # "<a(>" opens an element named "a(": used as a regex, it raised re.error.
    verdict = check_html("<div>\n<a(>x")
    assert not verdict.valid
    assert verdict.error is not None and "is never closed" in verdict.error


def test_html_script_src_that_is_not_a_url() -> None:
    # urlsplit raised "Invalid IPv6 URL" for a stray "[" while the request was matched against it.
    verdict = check_html('<script src="https://[cdn.example/jquery.js"></script>', request="use jquery")
    assert verdict.valid, verdict.error
    refused = check_html('<script src="https://[cdn.example/x.js"></script>', request="a todo list")
    assert not refused.valid


def test_html_line_comes_from_the_parser_not_from_the_message() -> None:
    # The line was read back from the message with a regex, so a src holding "at line 7" gave
    # line 7 (and a 5000-digit one crashed int()).
    src = "//cdn.example/at line 7" + "9" * 5000 + ".js"
    verdict = check_html(f'<p>intro</p>\n<script src="{src}"></script>')
    assert not verdict.valid
    assert verdict.line == 2


@pytest.mark.parametrize("validator", [check_html, check_documentation, check_jira, check_mermaid_header])
def test_lone_surrogates_are_invalid_everywhere(validator: Any) -> None:
    text = {
        check_html: "<p>\ud83d</p>",
        check_documentation: "# Title\n\nEmoji: \ud83d",
        check_jira: '[{"summary": "s\ud83d", "description": "d"}]',
        check_mermaid_header: "flowchart TD\n  A[\ud83d] --> B",
    }[validator]
    verdict = validator(text)
    assert not verdict.valid
    assert verdict.error is not None and "unpaired surrogate (U+D83D)" in verdict.error


def test_jira_json_the_parser_cannot_take() -> None:
    # json.loads raises ValueError (huge integers) and RecursionError (deep nesting), not JSONDecodeError.
    huge = check_jira('[{"summary": "s", "description": "d", "story_points": ' + "9" * 5000 + "}]")
    assert huge.error is not None and huge.error.startswith("invalid JSON: Exceeds the limit")
    deep = check_jira("[" * 100_000)
    assert deep.error == "invalid JSON: it is nested too deeply to parse"


# --- code -----------------------------------------------------------------------

PY = (
    'import sys\n\n\ndef main() -> int:\n    """Run."""\n    return 0\n\n\n'
    'if __name__ == "__main__":\n    sys.exit(main())'
)


@pytest.mark.parametrize(
    ("text", "language", "expected_language", "artifact"),
    [
        pytest.param(
            f"Here's the script:\n```python\n{PY}\n```\nRun it with python.",
            None,
            "python",
            PY,
            id="fenced-python",
        ),
        pytest.param(
            f"```py\n{PY}\n```\n```bash\npython main.py\n```",
            "python",
            "python",
            PY,
            id="two-fences-pick-python",
        ),
        pytest.param(f"Here is the code:\n\n{PY}", None, "python", PY, id="unfenced-with-preamble"),
        pytest.param(
            '"""Module doc."""\nimport os\n',
            None,
            "python",
            '"""Module doc."""\nimport os',
            id="unfenced-keeps-docstring",
        ),
        pytest.param('```rust\nfn main() { println!("hi") }\n```', None, "rust", None, id="rust-from-fence"),
        pytest.param("```\nconst x = 1;\n```", "js", "javascript", "const x = 1;", id="language-arg-alias"),
    ],
)
def test_code_valid(text: str, language: str | None, expected_language: str, artifact: str | None) -> None:
    verdict = check_code(text, language=language)
    assert verdict.valid, verdict.error
    assert verdict.language == expected_language
    assert verdict.diagram_type is None
    if artifact is not None:
        assert verdict.artifact == artifact


@pytest.mark.parametrize(
    ("text", "language", "error"),
    [
        pytest.param(
            "```python\nimport os\n\nif os.sep\n    print(1)\n```",
            None,
            "SyntaxError at line 3: expected ':'",
            id="syntax-error-line",
        ),
        pytest.param(
            "```python\ndef f():\nreturn 1\n```",
            None,
            "SyntaxError at line 2: expected an indented block",
            id="indentation",
        ),
        pytest.param(
            "```javascript\nconst x = 1;\n```",
            "python",
            "expected python code, got a javascript block",
            id="wrong-language-fence",
        ),
        pytest.param("```go\n```", None, "empty output; expected go code", id="empty-go"),
        pytest.param("I think you should use a dict here.", None, "SyntaxError at line 1", id="prose-only"),
    ],
)
def test_code_invalid(text: str, language: str | None, error: str) -> None:
    verdict = check_code(text, language=language)
    assert not verdict.valid
    assert verdict.error is not None and verdict.error.startswith(error)


MERMAID_ERD = f"```mermaid\n{ERD}\n```"


@pytest.mark.parametrize(
    ("text", "request_text", "error"),
    [
        pytest.param(MERMAID_ERD, None, "expected source code, got a Mermaid er diagram", id="erd-fenced"),
        pytest.param(ERD, None, "expected source code, got a Mermaid er diagram", id="erd-unfenced"),
        pytest.param(
            f"Here is the model:\n```\n{ERD}\n```",
            "write a Python function that stores orders",
            "expected python code, got a Mermaid er diagram",
            id="erd-untagged-fence-python-asked",
        ),
        pytest.param(
            f"```python\n{FLOW}\n```",
            "write a Python function for the checkout",
            "expected python code, got a Mermaid flowchart diagram",
            id="flowchart-in-python-fence",
        ),
        pytest.param(
            "```mermaid\nHere you go:\nA --> B\n```",
            None,
            "expected source code, got a Mermaid diagram",
            id="mermaid-fence-without-header",
        ),
        pytest.param(
            "%%{init: {'theme': 'dark'}}%%\nsequenceDiagram\n  Alice->>Bob: Hi",
            "a Rust client for the API",
            "expected rust code, got a Mermaid sequence diagram",
            id="sequence-after-directive",
        ),
        pytest.param(PAGE, None, "expected source code, got an HTML document", id="html-document-unfenced"),
        pytest.param(
            f"```html\n{PAGE}\n```",
            "a JavaScript function that toggles the menu",
            "expected javascript code, got an HTML document",
            id="html-document-javascript-asked",
        ),
        pytest.param(
            "<html>\n<body>hi</body>\n</html>",
            "write a Go server",
            "expected go code, got an HTML document",
            id="html-without-doctype",
        ),
    ],
)
def test_code_refuses_a_diagram_or_a_page(text: str, request_text: str | None, error: str) -> None:
    # Before: an ERD in a ```mermaid fence was "valid" (no mermaid parser, only a warning), and
    # Bash or YAML could even parse one; a code request must not get a diagram or a page.
    verdict = check_code(text, request=request_text)
    assert not verdict.valid
    assert verdict.checked
    assert verdict.error == error


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("pie = 3.14\nprint(pie)", id="pie-variable"),
        pytest.param("timeline: list[int] = []", id="timeline-annotation"),
        pytest.param("graph = {}\nblock = graph.get('a')", id="graph-variable"),
        pytest.param("erDiagram = load('erd.mmd')", id="erdiagram-variable"),
        pytest.param('html = """\n<!DOCTYPE html>\n<html></html>\n"""', id="html-in-a-string"),
    ],
)
def test_code_that_only_looks_like_a_diagram_or_page_stays_code(text: str) -> None:
    verdict = check_code(text)
    assert verdict.valid, verdict.error
    assert verdict.language == "python"


@pytest.mark.parametrize(
    ("text", "kwargs", "language"),
    [
        pytest.param('```haskell\nmain = putStrLn "hi"\n```', {}, "haskell", id="haskell-fence"),
        pytest.param(
            'main = putStrLn "hi"', {"request": "a Haskell hello world"}, "haskell", id="haskell-asked"
        ),
        pytest.param("```hs\nmain = pure ()\n```", {"language": "haskell"}, "haskell", id="language-arg"),
        pytest.param(
            "SELECT id, email FROM users WHERE active;",
            {"request": "write a SQL query listing the active users"},
            "sql",
            id="sql-asked",
        ),
        pytest.param("```postgresql\nSELECT 1;\n```", {}, "sql", id="sql-fence-alias"),
        pytest.param("```cpp\nint main() { return 0; }\n```", {"request": "a C++ main"}, "cpp", id="cpp"),
        pytest.param(
            MERMAID_ERD,
            {"request": "write the Mermaid code for the shop's ERD"},
            "mermaid",
            id="mermaid-asked",
        ),
    ],
)
def test_code_without_a_parser_is_unchecked_never_valid(
    text: str, kwargs: dict[str, str], language: str
) -> None:
    verdict = check_code(text, **kwargs)
    assert (verdict.valid, verdict.checked) == (False, False)
    assert verdict.error == f"no parser for {language}: the code was not checked"
    assert verdict.language == language
    assert verdict.warning is None


def test_code_asking_for_html_gets_the_html_check() -> None:
    asked = "write the HTML for the landing page"
    good = check_code(f"```html\n{PAGE}\n```", request=asked)
    assert good.valid, good.error
    assert good.language == "html"
    broken = check_code("<!DOCTYPE html>\n<html><body>\n<div><span>x</div>\n</body></html>", request=asked)
    assert not broken.valid
    assert broken.error is not None and broken.error.startswith("closing tag </div> at line 3")
    assert broken.language == "html"


@pytest.mark.parametrize(
    ("text", "kwargs", "language", "error"),
    [
        pytest.param(
            '{"port": 8080}', {"request": "write a JSON config for the server"}, "json", None, id="json"
        ),
        pytest.param(
            '{"port": 8080,}',
            {"request": "the JSON config"},
            "json",
            "invalid JSON at line 1",
            id="json-comma",
        ),
        pytest.param(
            "apiVersion: v1\nkind: Service\n---\napiVersion: apps/v1\nkind: Deployment",
            {"request": "the Kubernetes YAML for the app"},
            "yaml",
            None,
            id="yaml-several-documents",
        ),
        pytest.param(
            "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref Name",
            {"language": "yml"},
            "yaml",
            None,
            id="yaml-custom-tag",
        ),
        pytest.param(
            '```json\n{"replicas": 2}\n```',
            {"request": "the YAML values file"},
            "yaml",
            None,
            id="json-is-yaml",
        ),
        pytest.param(
            "Sorry, I cannot write that file.",
            {"request": "write the YAML for the deployment"},
            "yaml",
            "expected YAML with a mapping or a list, got only plain text",
            id="yaml-prose",
        ),
        pytest.param(
            "key: [unclosed", {"language": "yaml"}, "yaml", "invalid YAML at line 1", id="yaml-syntax"
        ),
    ],
)
def test_code_data_languages(text: str, kwargs: dict[str, str], language: str, error: str | None) -> None:
    verdict = check_code(text, **kwargs)
    assert verdict.language == language
    assert verdict.checked
    if error is None:
        assert verdict.valid, verdict.error
    else:
        assert verdict.error is not None and verdict.error.startswith(error)


@pytest.mark.parametrize(
    ("request_text", "language"),
    [
        ("write a python function that parses dates", "python"),
        ("a Python script that writes the YAML config", "python"),
        ("a Go service that runs a SQL query", "go"),
        ("the SQL schema of a blog", "sql"),
        ("write the JSON for the fixtures", "json"),
        ("an HTML page with a form", "html"),
        ("a Mermaid flowchart of the login", "mermaid"),
        ("a Haskell parser for dates", "haskell"),
        ("a C++ class for a ring buffer", "cpp"),
        ("a C function that reverses a string", "c"),
        ("a SwiftUI view in Swift", "swift"),
        ("a swift reply to the customer", None),
        ("Python or Rust, your choice", None),
        ("JSON and YAML versions of the config", None),
        ("let's go and write something", None),
        ("", None),
    ],
)
def test_language_from_request(request_text: str, language: str | None) -> None:
    assert language_from_request(request_text) == language


@pytest.mark.parametrize(
    ("text", "language", "error", "line"),
    [
        pytest.param(
            "```js\nconst s = '\ud800';\n```",
            None,
            "the code contains an unpaired surrogate (U+D800) at line 1",
            1,
            id="tree-sitter-lone-surrogate",  # raised UnicodeEncodeError
        ),
        pytest.param(
            "[" + "1" * 5000 + "]",
            "json",
            "invalid JSON: Exceeds the limit (4300 digits)",
            None,
            id="json-huge-integer",  # raised ValueError
        ),
        pytest.param("[" * 100_000, "json", "invalid JSON: it is nested too deeply", None, id="json-deep"),
        pytest.param("[" * 100_000, "yaml", "invalid YAML: it is nested too deeply", None, id="yaml-deep"),
        pytest.param(
            "x = " + "-" * 100_000 + "1",
            "python",
            "Python cannot parse this: it is nested too deeply",
            None,
            id="python-deep",  # raised MemoryError
        ),
        pytest.param(
            "x = 1\x00", "python", "SyntaxError: source code string cannot contain null bytes", None, id="nul"
        ),
    ],
)
def test_code_answers_where_parsers_raise(text: str, language: str, error: str, line: int | None) -> None:
    verdict = check_code(text, language=language)
    assert not verdict.valid
    assert verdict.error is not None and verdict.error.startswith(error)
    assert verdict.line == line


def test_a_tree_sitter_parse_is_bounded_and_the_parser_reusable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bash's error recovery on "<div>" * 20_000 took 15 s, on the event loop.
    monkeypatch.setattr("validators.syntax.TREE_SITTER_SECONDS", 0.05)
    started = time.monotonic()
    verdict = check_code("<div>" * 20_000, language="bash")
    assert time.monotonic() - started < 2
    assert verdict.error == "the bash parser gave up after 0.05 s; the code could not be checked"
    assert verdict.checked  # a parser exists: another reply may well be checkable
    # A cancelled parse must not leak into the next one (tree-sitter resumes it unless reset).
    assert check_code("echo hi", language="bash").valid


def test_html_nested_too_deep_is_refused_before_parsing() -> None:
    # html5lib took 20 s on "<div>" * 20_000 (its scope checks grow with the depth).
    started = time.monotonic()
    verdict = check_html("<main>\n" + "<div>" * 20_000)
    assert time.monotonic() - started < 2
    assert verdict.error is not None and verdict.error.startswith(
        "elements nested more than 512 deep at line 2"
    )
    assert verdict.line == 2
    # Deep but within what browsers keep, self-closed SVG shapes, and void elements are fine.
    assert check_html("<div>" * 500 + "x" + "</div>" * 500).valid
    assert check_html("<svg>" + "<path d='M0 0'/>" * 2_000 + "</svg>").valid
    assert check_html("<p>" + "<br>" * 2_000 + "</p>").valid


def test_python_compile_warnings_are_not_syntax_errors() -> None:
    # "\d" is an invalid escape: a DeprecationWarning (SyntaxWarning from 3.12), which turned
    # into a SyntaxError wherever warnings are errors (this suite's setting).
    verdict = check_code('```python\nimport re\nDIGITS = re.compile("\\d+")\n```')
    assert verdict.valid, verdict.error


# --- jira -----------------------------------------------------------------------

TASKS: list[dict[str, Any]] = [
    {
        "summary": "Create login form",
        "description": "Form with email and password",
        "acceptance_criteria": ["Validates email", "Shows errors"],
        "story_points": 3,
        "type": "Story",
        "priority": "High",
    },
    {"summary": "Add logout", "description": "Button in header"},
]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            f"Here are the tasks:\n```json\n{json.dumps(TASKS)}\n```\nLet me know!", id="fenced-list"
        ),
        pytest.param(json.dumps({"tasks": TASKS}), id="tasks-object"),
        pytest.param(f"Tasks below.\n{json.dumps(TASKS, indent=2)}", id="unfenced-preamble"),
    ],
)
def test_jira_valid(text: str) -> None:
    verdict = check_jira(text)
    assert verdict.valid, verdict.error
    data = json.loads(verdict.artifact)
    assert data[0] == TASKS[0]
    assert data[1] == {**TASKS[1], "acceptance_criteria": []}
    assert verdict.artifact.startswith('[\n  {\n    "summary"')


def test_jira_normalises_lenient_fields() -> None:
    task = {
        "summary": "S",
        "description": "D",
        "acceptance_criteria": "It works",
        "story_points": "5",
        "labels": ["x"],
    }
    verdict = check_jira(json.dumps([task]))
    assert verdict.valid, verdict.error
    assert json.loads(verdict.artifact) == [
        {"summary": "S", "description": "D", "acceptance_criteria": ["It works"], "story_points": 5}
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(
            '```json\n[{"summary": "a", "description": "b"},]\n```',
            "invalid JSON at line 1 column 39: trailing comma before ']'",
            id="trailing-comma",
        ),
        pytest.param(
            '[{"summary": "a" "description": "b"}]',
            "invalid JSON at line 1 column 18: Expecting ','",
            id="missing-comma",
        ),
        pytest.param(
            json.dumps([TASKS[0], {"description": "no summary"}]),
            "task 2: field 'summary' missing",
            id="missing-summary",
        ),
        pytest.param(
            json.dumps([{"summary": "  ", "description": "d"}]),
            "task 1: field 'summary' is empty",
            id="blank-summary",
        ),
        pytest.param(
            json.dumps([{"summary": "s", "description": "d", "story_points": "lots"}]),
            "task 1: field 'story_points': Input should be a valid integer",
            id="bad-points",
        ),
        pytest.param(
            json.dumps([TASKS[0], "just a string"]), "task 2: expected an object, got str", id="not-an-object"
        ),
        pytest.param("[]", "the task list is empty", id="empty-list"),
        pytest.param('{"items": []}', 'an object with a "tasks" list', id="object-without-tasks"),
        pytest.param('"tasks"', "expected a JSON list of tasks, got str", id="scalar"),
        pytest.param("", "empty output", id="empty"),
    ],
)
def test_jira_invalid(text: str, error: str) -> None:
    verdict = check_jira(text)
    assert not verdict.valid
    assert verdict.error is not None and error in verdict.error


def test_jira_reports_every_bad_task() -> None:
    verdict = check_jira(json.dumps([{"summary": "a"}, {"description": "b"}]))
    assert verdict.error == "task 1: field 'description' missing; task 2: field 'summary' missing"


def test_jira_schema_is_exported() -> None:
    schema = JiraTask.model_json_schema()
    assert set(schema["required"]) == {"summary", "description"}
    assert schema["properties"]["summary"]["minLength"] == 1
    assert "tasks" in JiraTaskList.model_json_schema()["properties"]


# --- documentation ----------------------------------------------------------------

DOC = "# Setup\n\nInstall it:\n\n```bash\npip install modelyard\n```\n\n## Usage\n\nRun `modelyard`."


@pytest.mark.parametrize(
    ("text", "artifact"),
    [
        pytest.param(DOC, DOC, id="plain"),
        pytest.param(
            f"Here is the README:\n\n```markdown\n{DOC}\n```\n\nWant changes?",
            DOC,
            id="md-wrapper-with-nested-fence",
        ),
        pytest.param(f"````md\n{DOC}\n````", DOC, id="longer-outer-fence"),
        pytest.param(f"```\n{DOC}\n```", DOC, id="lone-untagged-wrapper"),
        pytest.param(f"Intro line.\n\n{DOC}", f"Intro line.\n\n{DOC}", id="prose-kept-whole"),
    ],
)
def test_documentation_valid(text: str, artifact: str) -> None:
    verdict = check_documentation(text)
    assert verdict.valid, verdict.error
    assert verdict.artifact == artifact


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("Just some text.\nNo headings here.", "no Markdown heading found", id="no-heading"),
        pytest.param(
            "Text\n```python\n# comment, not a heading\n```",
            "no Markdown heading found",
            id="hash-in-code-only",
        ),
        pytest.param(
            "# Title\n\nExample:\n\n```python\nx = 1\n",
            "unclosed code fence opened at line 5",
            id="unclosed-fence",
        ),
        pytest.param("```markdown\n```", "empty output", id="empty-wrapper"),
    ],
)
def test_documentation_invalid(text: str, error: str) -> None:
    verdict = check_documentation(text)
    assert not verdict.valid
    assert verdict.error is not None and error in verdict.error


# --- seam -------------------------------------------------------------------------


async def test_validators_dispatch() -> None:
    async with Validators() as validators:
        er = await validators.check("mermaid", f"```mermaid\n{FLOW}\n```", expect_kind="er")
        code = await validators.check("code", "```\nx = (\n```", language="python")
        page = await validators.check("html", PAGE, expect_kind="document")
        jira = await validators.check("jira", json.dumps(TASKS))
        doc = await validators.check("documentation", DOC)
    assert (er.valid, er.diagram_type) == (False, "flowchart")
    assert code.error is not None and code.error.startswith("SyntaxError at line 1")
    assert page.valid and jira.valid and doc.valid


async def test_validators_rejects_misuse() -> None:
    validators = Validators()
    with pytest.raises(ValueError, match="takes no expect_kind"):
        await validators.check("jira", "[]", expect_kind="er")
    with pytest.raises(ValueError, match="takes no language"):
        await validators.check("mermaid", FLOW, language="python")
    with pytest.raises(ValueError, match="unknown validator"):
        await validators.check("yaml", "a: 1")  # type: ignore[arg-type]
    await validators.aclose()
    await validators.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await validators.check("mermaid", FLOW)


def test_verdict_to_dict_and_invariants() -> None:
    verdict = Verdict.fail("x", "boom", diagram_type="er")
    assert verdict.to_dict() == {
        "valid": False,
        "artifact": "x",
        "error": "boom",
        "diagram_type": "er",
        "language": None,
        "line": None,
        "warning": None,
        "details": None,
        "checked": True,
    }
    with pytest.raises(ValueError):
        Verdict(valid=False, artifact="x")
    with pytest.raises(ValueError):
        Verdict(valid=True, artifact="x", error="nope")
    with pytest.raises(ValueError, match="unchecked"):
        Verdict(valid=True, artifact="x", checked=False)


def test_tree_sitter_checks_from_several_threads_at_once() -> None:
    """One shared tree-sitter Parser used by two threads at once crashed the whole process."""
    import threading

    from validators.code import check_code

    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(150):
                source = ("if [ " if (i + seed) % 2 else "echo ok\n") * (50 + i)
                check_code(source, language="bash")
        except BaseException as exc:  # noqa: BLE001 - any failure must reach the assertion
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
