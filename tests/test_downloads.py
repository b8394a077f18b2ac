"""The files a final answer offers (ui/downloads.py) and the JIRA table (ui/answer.py), without Chainlit."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.response import ModelResponse
from tests.conftest import Rig
from ui.answer import answer_markdown, jira_markdown, jira_tasks
from ui.downloads import JIRA_CSV_COLUMNS, base_name, code_language, downloads, slug
from validators.jira import check_jira

TASKS = [
    {
        "summary": "Reset link by email",
        "description": 'Send a one-time link, "valid" for 1 h,\nthen expire it.',
        "acceptance_criteria": ["Link expires after 1 h", "Used links | rejected"],
        "story_points": 5,
        "type": "Story",
        "priority": "High",
    },
    {
        "summary": "Rate-limit resets",
        "description": "At most 3 per hour, per account: café ✓.",
        "story_points": 3,
    },
    {"summary": "Audit log", "description": "Record each reset.", "type": "Task"},
]
ROOT = Path(__file__).resolve().parents[1]
ERD = "erDiagram\n    USER ||--o{ POST : writes"


def response(**changes: object) -> ModelResponse:
    fields: dict[str, object] = {
        "content": ERD,
        "model_used": "mermaid-mistral",
        "is_fallback": False,
        "generation_time": 1.0,
        "tokens_used": 10,
        "error_message": None,
        "fallback_reason": None,
        "task_type": "erd",
        "valid": True,
    }
    return ModelResponse(**(fields | changes))  # type: ignore[arg-type]


def jira_response(**changes: object) -> ModelResponse:
    verdict = check_jira(json.dumps(TASKS))
    assert verdict.valid
    return response(**({"content": verdict.artifact, "task_type": "jira", "model_used": "llama3"} | changes))


def files(resp: ModelResponse, validator: str | None, prompt: str | None = None) -> dict[str, bytes]:
    return {file.name: file.data for file in downloads(resp, validator, prompt)}


def test_jira_csv_parses_back_with_jiras_column_names_and_the_criteria_in_the_description() -> None:
    out = downloads(jira_response(), "jira", "JIRA tickets for a password reset feature")
    assert [(f.name, f.mime) for f in out] == [
        ("jira-tickets-password-reset-feature.csv", "text/csv"),
        ("jira-tickets-password-reset-feature.md", "text/markdown"),
        ("jira-tickets-password-reset-feature.json", "application/json"),
    ]
    data = out[0].data
    assert b"\r\n" in data and not data.startswith(b"\xef\xbb\xbf")  # RFC 4180 line ends, no BOM
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == list(JIRA_CSV_COLUMNS) == ["Summary", "Description", "Issue Type", "Story Points"]
    assert len(rows) == 4 and all(len(row) == 4 for row in rows)
    assert rows[1] == [
        "Reset link by email",
        'Send a one-time link, "valid" for 1 h,\nthen expire it.\n\n'
        "Acceptance criteria:\n* Link expires after 1 h\n* Used links | rejected",
        "Story",
        "5",
    ]
    assert rows[2] == ["Rate-limit resets", "At most 3 per hour, per account: café ✓.", "", "3"]
    assert rows[3] == ["Audit log", "Record each reset.", "Task", ""]


def test_jira_json_download_is_the_validated_list_and_markdown_the_table_with_its_total() -> None:
    got = files(jira_response(), "jira")
    assert set(got) == {"jira.csv", "jira.md", "jira.json"}  # no prompt: the task type alone
    tasks = json.loads(got["jira.json"])
    assert [t["summary"] for t in tasks] == ["Reset link by email", "Rate-limit resets", "Audit log"]
    assert tasks[0]["priority"] == "High"
    table = got["jira.md"].decode("utf-8")
    assert table.startswith("| Summary | Description | Acceptance criteria | Story points | Type |\n|---|")
    assert "**Total: 8 story points** (1 of 3 tasks not estimated)" in table


def test_jira_answer_is_a_table_not_json() -> None:
    text = answer_markdown(jira_response(), "jira", "Generated using llama3 (local) in 1.0 s")
    assert "```" not in text and '"summary"' not in text
    lines = text.splitlines()
    assert lines[0] == "| Summary | Description | Acceptance criteria | Story points | Type |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 3  # one row per task: the description's newline did not end its row
    assert rows[0] == (
        '| Reset link by email | Send a one-time link, "valid" for 1 h, then expire it. '
        "| \u2022 Link expires after 1 h \u2022 Used links \\| rejected | 5 | Story |"
    )
    assert rows[2] == "| Audit log | Record each reset. | - | - | Task |"
    assert "**Total: 8 story points** (1 of 3 tasks not estimated)" in text
    assert text.endswith(":::")  # the closing alert still follows


def test_story_points_total_in_every_case() -> None:
    one = jira_tasks(json.dumps([{"summary": "a", "description": "b", "story_points": 1}]))
    assert one is not None and jira_markdown(one).endswith("**Total: 1 story point**")
    tasks = jira_tasks(json.dumps({"tasks": [{"summary": "a", "description": "b"}]}))
    assert tasks is not None and jira_markdown(tasks).endswith(
        "**Total: 0 story points** (1 of 1 task not estimated)"
    )


@pytest.mark.parametrize("content", ["[]", "not json", '[{"summary": "no description"}]', "[1]", '{"x": 1}'])
def test_jira_content_that_is_no_task_list_stays_json(content: str) -> None:
    assert jira_tasks(content) is None
    text = answer_markdown(response(content=content, task_type="jira", valid=False), "jira", "bad")
    assert text.startswith("```json\n")


def test_an_invalid_jira_answer_offers_its_raw_json_marked_invalid() -> None:
    bad = response(content='[{"summary": "x"', task_type="jira", valid=False, error_message="invalid")
    assert files(bad, "jira", "JIRA tasks for onboarding") == {
        "jira-tasks-onboarding-invalid.json": b'[{"summary": "x"\n'
    }


@pytest.mark.parametrize(
    ("validator", "task", "content", "prompt", "name", "mime"),
    [
        (
            "mermaid",
            "erd",
            ERD,
            "ERD for a blog with users and posts",
            "erd-blog-users-posts.mmd",
            "text/plain",
        ),
        ("mermaid", "architecture", "flowchart TD\n  A-->B", None, "architecture.mmd", "text/plain"),
        (
            "html",
            "html",
            "<!DOCTYPE html><p>x",
            "Landing page for my bakery!",
            "html-landing-page-bakery.html",
            "text/html",
        ),
        (
            "documentation",
            "documentation",
            "# Guide",
            "How to set up SSO",
            "documentation-how-set-up-sso.md",
            "text/markdown",
        ),
        (
            "code",
            "code",
            "def f():\n    pass",
            "a python function for slugs",
            "code-python-function-slugs.py",
            "text/plain",
        ),
        (
            "code",
            "code",
            "fn main() {}",
            "Rust CLI that counts words",
            "code-rust-cli-counts-words.rs",
            "text/plain",
        ),
        (
            "code",
            "code",
            "const x = 1;",
            "a JavaScript debounce",
            "code-javascript-debounce.js",
            "text/javascript",
        ),
        ("code", "code", "interface A {}", "TypeScript types", "code-typescript-types.ts", "text/plain"),
        ("code", "code", "package main", "a Go program that pings", "code-go-program-pings.go", "text/plain"),
        ("code", "code", "class A {}", "Java class", "code-java-class.java", "text/plain"),
        ("code", "code", "SELECT 1;", "the SQL schema of a shop", "code-sql-schema-shop.sql", "text/plain"),
        ("code", "code", "echo hi", "bash script to back up", "code-bash-script-back-up.sh", "text/plain"),
        ("code", "code", "#!/bin/sh\necho hi", "back up my photos", "code-back-up-photos.sh", "text/plain"),
        ("code", "code", '{"a": 1}', "config for the linter", "code-config-linter.json", "application/json"),
        ("code", "code", "def f():\n    pass", None, "code.py", "text/plain"),
        ("code", "code", "fn main() { let x = 1; }", "word counter", "code-word-counter.txt", "text/plain"),
    ],
)
def test_file_name_and_extension_per_task_type(
    validator: str, task: str, content: str, prompt: str | None, name: str, mime: str
) -> None:
    [file] = downloads(response(content=content, task_type=task), validator, prompt)
    assert (file.name, file.mime) == (name, mime)
    assert file.data == (content + "\n").encode("utf-8")


def test_an_artifact_delivered_invalid_or_unchecked_says_so_in_its_name() -> None:
    invalid = response(valid=False, error_message="Artifact is invalid: line 2")
    assert list(files(invalid, "mermaid")) == ["erd-invalid.mmd"]
    unchecked = response(content="int main() {}", task_type="code", valid=False, checked=False)
    assert list(files(unchecked, "code", "a C++ hello world")) == ["code-c-hello-world-unchecked.cpp"]
    # A prompt ending in "invalid" cannot make a valid page's file read as marked invalid.
    assert list(files(response(content="<p>x", task_type="html"), "html", "page for invalid")) == [
        "html-page.html"
    ]


def test_nothing_for_a_prose_answer_or_when_nothing_was_produced() -> None:
    assert (
        downloads(response(content="It has two tables.", prose=True, task_type="erd"), "documentation") == []
    )
    failed = response(content="", valid=False, error_message="Local model failed (server_down).")
    assert downloads(failed, "mermaid", "ERD for a shop") == []
    assert downloads(response(content="  \n", valid=False, error_message="empty"), "mermaid") == []


def test_slugs_are_short_ascii_and_skip_filler_words() -> None:
    assert slug("Créer un schéma: ERD für Bücher & Autoren!!") == "creer-un-schema-erd-fur"
    assert slug("the a of") == ""
    assert len(slug("x" * 100)) == 40
    assert slug("alpha " * 3 + "b" * 39) == "alpha-alpha-alpha"  # a word that overflows is left out
    assert base_name("erd", "ERD for a blog") == "erd-blog"
    assert base_name("my_task", "  ") == "my-task"
    assert base_name("", None) == "artifact"


def test_code_is_saved_in_the_language_its_validator_judged() -> None:
    # The fence said Rust; the delivered code has no fence left and the request names no language.
    rust = response(content="fn main() {}", task_type="code", language="rust")
    assert list(files(rust, "code", "a word counter")) == ["code-word-counter.rs"]


async def test_a_fenced_answer_s_language_reaches_the_response(rig: Rig) -> None:
    codellama = "codellama:13b-instruct-q4_K_M"
    rig.ollama.update_model(codellama, reply="```javascript\nconst add = (a, b) => a + b;\n```")
    answer = await rig.ask(rig.config(), "a function that adds two numbers", task="code")
    assert answer.ok and answer.language == "javascript", answer
    assert list(files(answer, "code", "a function that adds two numbers")) == [
        "code-function-adds-two-numbers.js"
    ]


def test_code_language_prefers_the_request_then_the_content() -> None:
    assert code_language("print(1)", "a Rust function") == "rust"
    assert code_language("#!/usr/bin/env python3\nprint(1)", None) == "python"
    assert code_language("#!/usr/bin/env node\nconsole.log(1)", None) == "javascript"
    assert code_language("SELECT * FROM t WHERE", None) is None


def test_the_pure_part_imports_no_chainlit() -> None:
    # Importing chainlit reads its config and creates .files/ in the cwd: downloads() must not need it.
    code = "import sys, ui.downloads; sys.exit('chainlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
