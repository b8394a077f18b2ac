"""Bad input, as a user gives it: one clear message, exit 2, no traceback, and no earlier thread lost.

Each case runs the real `modelyard` command against the Ollama emulator, after a good request
on a thread; at the end that thread still has its checkpoint and continues.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.ollama import OllamaEmulator

ROOT = Path(__file__).resolve().parent.parent
ROUTED = "routing: {default_task: x, tasks: {x: {model: mermaid-mistral, validator: mermaid}}}\n"


def run(
    env: dict[str, str], *args: str | bytes, stdin: bytes | None = None, as_user: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd: list[str | bytes] = [sys.executable, "-m", "ui.cli", *args]
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    result = subprocess.run(cmd, env=env, input=stdin, capture_output=True, timeout=60, cwd=ROOT)
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


@pytest.fixture
def env(tmp_path: Path, ollama: OllamaEmulator) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and "BASE_URL" not in k}
    clean.pop("MODELYARD_CONFIG", None)
    return clean | {"OLLAMA_HOST": ollama.url, "MODELYARD_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def earlier_thread(env: dict[str, str]) -> Iterator[str]:
    """A thread with one good request; after the test it must still continue."""
    first = run(env, "ask", "--thread", "kept", "--task", "erd", "ERD for a blog")
    assert first.returncode == 0, first.stderr
    yield "kept"
    again = run(env, "ask", "--thread", "kept", "now add a TAGS table")
    assert again.returncode == 0, again.stderr
    assert "continuing the thread's erd request" in again.stderr


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    message = [line for line in result.stderr.splitlines() if line.startswith("modelyard:")]
    assert len(message) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("", "the prompt is empty"),
        ("   \n\t ", "the prompt is empty"),
        ("ERD\x00 for a blog", "control character (U+0000) at character 4"),
        ("ERD for a \x1b[31mblog", "control character (U+001B)"),
    ],
)
def test_prompts_a_model_must_never_see(
    env: dict[str, str], earlier_thread: str, ollama: OllamaEmulator, prompt: str, expected: str
) -> None:
    sent = len(ollama.requests)
    if "\x00" in prompt:  # argv cannot carry NUL: standard input can
        result = run(env, "ask", "-", stdin=prompt.encode())
    else:
        result = run(env, "ask", prompt)
    refused(result, expected)
    assert ollama.requests[sent:] == []  # refused before any model (or Ollama at all) was asked


def test_oversized_prompt_names_the_limit_and_is_never_sent(env: dict[str, str], earlier_thread: str) -> None:
    big = ("Describe the blog schema. " * 4000).encode()  # 104,000 bytes
    result = run(env, "ask", "-", stdin=big)
    refused(result, "104,000 bytes, over the limit of 100,000 bytes", "routing.max_prompt_bytes")


def test_invalid_utf8_on_the_command_line_and_on_stdin(env: dict[str, str], earlier_thread: str) -> None:
    refused(run(env, "ask", b"ERD for a \xff\xfe blog"), "not valid UTF-8")
    refused(
        run(env, "ask", "-", stdin=b"ERD for a \xc3\x28 blog"), "not valid UTF-8 (byte 11 of standard input)"
    )


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("routing: [unclosed\n", "not valid YAML"),
        ("ollama: {timeout: 5}\n", "routing: Field required"),
        ("ollama: {timeout: soon}\n" + ROUTED, "ollama.timeout"),
        ("fallback: {cloud_provider: claude}\n" + ROUTED, "fallback.cloud_provider"),
        ("ollama: {timeout: -5}\n" + ROUTED, "ollama.timeout: Input should be greater than 0"),
        ("ollama: {keep_alive: forever}\n" + ROUTED, "ollama.keep_alive"),
        (
            "ollama: {base_url: 'localhost:11434'}\n" + ROUTED,
            "ollama.base_url: expected an http:// or https://",
        ),
        (
            "routing: {default_task: x, tasks: {x: {model: m, validator: mermaid, expect_kind: erdd}}}\n",
            "routing.tasks.x.expect_kind: 'erdd' is not a kind the mermaid validator knows",
        ),
        (
            "routing: {default_task: y, tasks: {x: {model: m, validator: code}}}\n",
            "routing.default_task: 'y'",
        ),
    ],
)
def test_bad_configs_name_the_file_and_the_key(
    env: dict[str, str], earlier_thread: str, tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    refused(run(env | {"MODELYARD_CONFIG": str(path)}, "ask", "ERD for a blog"), str(path), expected)


def test_unknown_task_and_bad_base_urls(env: dict[str, str], earlier_thread: str) -> None:
    refused(run(env, "ask", "--task", "poem", "a sonnet"), "unknown task type 'poem'")
    refused(
        run(env | {"OPENAI_BASE_URL": "ftp://mirror/v1"}, "ask", "hi"), "OPENAI_BASE_URL: expected an http"
    )
    refused(run(env | {"OLLAMA_HOST": "file:///etc/passwd"}, "ask", "hi"), "OLLAMA_HOST")


def test_read_only_data_directory(env: dict[str, str], earlier_thread: str) -> None:
    # root ignores file modes: run the command as an unprivileged user against a read-only dir.
    as_user = "nobody" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp())
    try:
        data = base / "data"
        data.mkdir()
        for path in (base, data):
            path.chmod(0o555)
        result = run(env | {"MODELYARD_DATA_DIR": str(data)}, "ask", "ERD for a blog", as_user=as_user)
        refused(result, "cannot use the data directory", "--data-dir")
        stats = run(env | {"MODELYARD_DATA_DIR": str(data)}, "stats", as_user=as_user)
        refused(stats, "cannot use the data directory")
    finally:
        for path in (base, base / "data"):
            path.chmod(0o755)


def test_locked_usage_database(env: dict[str, str], earlier_thread: str) -> None:
    usage = Path(env["MODELYARD_DATA_DIR"]) / "usage.db"
    holder = sqlite3.connect(usage, isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for longer than the busy timeout
    try:
        result = run(env, "ask", "ERD for a blog")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    refused(result, "locked")
