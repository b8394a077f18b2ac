"""The chat UI's plain parts: answer and dashboard Markdown, the model panel's data, chat history
tables, the cookie secret, the offline page. (The browser suite in tests/browser/ runs the rest.)"""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graph.overview import ModelRow, Overview
from nodes.response import ModelResponse
from ui import history, setup_frontend
from ui.answer import alert, answer_markdown, fence, panel_props, usage_markdown
from usage.store import ModelStats

ERD = "erDiagram\n    A ||--o{ B : has"


def response(**changes: object) -> ModelResponse:
    fields: dict[str, object] = {
        "content": ERD,
        "model_used": "mermaid-mistral",
        "is_fallback": False,
        "generation_time": 8.3,
        "tokens_used": 70,
        "error_message": None,
        "fallback_reason": None,
        "task_type": "erd",
        "valid": True,
    }
    return ModelResponse(**(fields | changes))  # type: ignore[arg-type]


def test_fence_outgrows_backticks_inside_the_body() -> None:
    assert fence("a\n", "mermaid") == "```mermaid\na\n```"
    assert fence("x ```` y", "") == "`````\nx ```` y\n`````"


def test_local_answer_is_the_fenced_artifact_and_a_success_line() -> None:
    text = answer_markdown(response(), "mermaid", "Generated using mermaid-mistral (local) in 8.3 s")
    line = r"Generated using mermaid\-mistral \(local\) in 8\.3 s"
    assert text == f"```mermaid\n{ERD}\n```\n\n::: success\n{line}\n:::"


def test_cloud_answer_warns_and_a_failure_is_an_error_line() -> None:
    cloud = response(is_fallback=True, model_used="gpt-4o-mini", fallback_reason="server_down")
    assert answer_markdown(cloud, "mermaid", "Used it").endswith("::: warning\nUsed it\n:::")
    failed = response(content="", valid=False, error_message="boom")
    assert answer_markdown(failed, "mermaid", "boom at http://x") == "**Error:** boom at http://x"


def test_alert_text_stays_one_plain_line() -> None:
    # Emphasis or code would split the paragraph, and Chainlit would show the ":::" raw.
    text = alert("warning", "Used gpt-4o_mini *now*\n\n`x`")
    assert text == "::: warning\n" + r"Used gpt\-4o\_mini \*now\* \`x\`" + "\n:::"


def test_documentation_is_shown_rendered_and_jira_as_json() -> None:
    doc = response(content="# Guide\n\nText", task_type="documentation")
    assert answer_markdown(doc, "documentation", "ok").startswith("# Guide\n\nText\n\n")
    assert answer_markdown(response(content="[]"), "jira", "ok").startswith("```json\n[]\n```")


def stats(model: str, location: str, total: int) -> ModelStats:
    return ModelStats(
        model=model,
        provider="ollama",
        location=location,
        total=total,
        successes=total,
        invalid=0,
        failures=0,
        fallbacks=0 if location == "local" else total,
        success_rate=1.0,
        fallback_rate=0.0 if location == "local" else 1.0,
        avg_time_s=1.25,
        input_tokens=10,
        output_tokens=20,
        last_used="2026-01-01T00:00:00+00:00",
    )


def test_usage_markdown_is_a_table_with_a_pie_when_models_compare() -> None:
    assert "No requests" in usage_markdown([])
    one = usage_markdown([stats("mermaid-mistral", "local", 3)])
    assert "| mermaid-mistral | local | 3 | 100% | 0% | 1.25 s | 10 / 20 |" in one
    assert "pie" not in one
    two = usage_markdown([stats("mermaid-mistral", "local", 3), stats("gpt|4", "cloud", 1)])
    assert "| gpt\\|4 | cloud | 1 | 100% | 100% |" in two
    assert '\npie showData title Requests per model\n    "mermaid-mistral" : 3' in two
    assert "```chart\n%%{init: {'themeVariables': {'pie1': " in two  # drawn by the page, source hidden


def test_panel_props_show_each_model_its_cooldown_and_memory_against_the_budget() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=29, seconds=50)
    rows = [
        ModelRow(
            "mermaid-mistral",
            ["mermaid", "erd"],
            True,
            "ready",
            4_100_000_000,
            4_100_000_000,
            soon,
            0.0,
            None,
            3.2,
        ),
        ModelRow("llama3", ["jira"], False, "error", None, None, None, 42.4, "load_failed", None),
    ]
    props = panel_props(Overview(rows, "http://127.0.0.1:11434", None, 13_000_000_000, 4_100_000_000))
    assert props["models"] == [
        {
            "model": "mermaid-mistral",
            "tasks": ["mermaid", "erd"],
            "installed": True,
            "status": "ready",
            "size": "4.1 GB",
            "unloads": "in 30 min",
            "cooldown": None,
            "bytes": 4_100_000_000,
            "warnings": [],
        },
        {
            "model": "llama3",
            "tasks": ["jira"],
            "installed": False,
            "status": "error",
            "size": "-",
            "unloads": "-",
            "cooldown": "42 s",
            "bytes": 0,
            "warnings": [],
        },
    ]
    assert props["memory"] == {
        "resident": 4_100_000_000,
        "budget": 13_000_000_000,
        "label": "4.1 GB of 13.0 GB",
    }
    down = panel_props(Overview(rows[1:], "http://x:1", "connection refused"))
    assert down["error"] == "Ollama at http://x:1: connection refused" and down["ollama_url"] == "http://x:1"
    named = panel_props(Overview(rows[1:], "http://x:1", "Ollama is not reachable at http://x:1 (refused)"))
    assert named["error"] == "Ollama is not reachable at http://x:1 (refused)"  # the address said once
    assert down["memory"]["label"] == "0 B (no budget)"


def test_chat_history_tables_are_created_once(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    assert history.migrate(path) == [1]
    assert history.migrate(path) == []
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        steps = {row[1] for row in conn.execute("PRAGMA table_info(steps)")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert {"users", "threads", "steps", "elements", "feedbacks"} <= tables
    # Every key Chainlit 2.12's Step.to_dict and Message.to_dict write (an unknown column fails the write).
    assert {"autoCollapse", "defaultOpen", "command", "modes", "showInput", "generation"} <= steps
    assert mode == "wal"


def test_chat_history_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    history.migrate(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO _migrations (id, name) VALUES (99, 'from the future')")
    conn.close()
    with pytest.raises(history.HistoryError, match=r"migrations \[99\]"):
        history.migrate(path)


def test_auth_secret_is_made_once_per_data_dir_and_private(tmp_path: Path) -> None:
    secret = history.auth_secret(tmp_path / "data")
    assert len(secret) >= 32
    assert history.auth_secret(tmp_path / "data") == secret
    assert history.auth_secret(tmp_path / "other") != secret
    mode = (tmp_path / "data" / history.SECRET_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == [history.SECRET_FILE]


def test_offline_index_drops_every_external_link() -> None:
    index = (setup_frontend.chainlit_dist() / "index.html").read_text(encoding="utf-8")
    assert "https://" in index
    offline = setup_frontend.offline_index(index)
    assert "https://" not in offline
    assert "<!-- FONT START -->" in offline and "<!-- JS INJECTION PLACEHOLDER -->" in offline


def test_offline_index_fails_loudly_when_chainlit_changes_its_page() -> None:
    with pytest.raises(setup_frontend.SetupError, match="KaTeX stylesheet not found"):
        setup_frontend.offline_index("<html><head></head></html>")
