"""Bad input, as a user gives it: one clear message, exit 2, no traceback, and no earlier thread lost.

Each case runs the real `modelyard` command against the Ollama emulator, after a good request
on a thread; at the end that thread still has its checkpoint and continues.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
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


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, ollama: OllamaEmulator) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and "BASE_URL" not in k}
    clean.pop("MODELYARD_CONFIG", None)
    data = tmp_path_factory.mktemp("bad-input") / "data"
    return clean | {"OLLAMA_HOST": ollama.url, "MODELYARD_DATA_DIR": str(data)}


@pytest.fixture(scope="module", autouse=True)
def earlier_thread(env: dict[str, str]) -> Iterator[str]:
    """A thread with one good request before every bad input; afterwards it still continues."""
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
    env: dict[str, str], ollama: OllamaEmulator, prompt: str, expected: str
) -> None:
    sent = len(ollama.requests)
    # argv cannot carry NUL: standard input can
    result = run(env, "ask", "-", stdin=prompt.encode()) if "\x00" in prompt else run(env, "ask", prompt)
    refused(result, expected)
    assert ollama.requests[sent:] == []  # refused before any model (or Ollama at all) was asked


def test_oversized_prompt_names_the_limit_and_is_never_sent(env: dict[str, str]) -> None:
    big = ("Describe the blog schema. " * 4000).encode()  # 104,000 bytes
    result = run(env, "ask", "-", stdin=big)
    refused(result, "104,000 bytes, over the limit of 100,000 bytes", "routing.max_prompt_bytes")


def test_invalid_utf8_on_the_command_line_and_on_stdin(env: dict[str, str]) -> None:
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
    env: dict[str, str], tmp_path: Path, yaml_text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    refused(run(env | {"MODELYARD_CONFIG": str(path)}, "ask", "ERD for a blog"), str(path), expected)


def test_unknown_task_and_bad_base_urls(env: dict[str, str]) -> None:
    refused(run(env, "ask", "--task", "poem", "a sonnet"), "unknown task type 'poem'")
    refused(
        run(env | {"OPENAI_BASE_URL": "ftp://mirror/v1"}, "ask", "hi"), "OPENAI_BASE_URL: expected an http"
    )
    refused(run(env | {"OLLAMA_HOST": "file:///etc/passwd"}, "ask", "hi"), "OLLAMA_HOST")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write to. root ignores file modes, so for root it is a read-only tmpfs."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_data_directory(env: dict[str, str], read_only_dir: Path) -> None:
    ro_env = env | {"MODELYARD_DATA_DIR": str(read_only_dir / "data")}
    refused(run(ro_env, "ask", "ERD for a blog"), "cannot use the data directory", "--data-dir")
    refused(run(ro_env, "stats"), "cannot use the data directory")


def test_locked_usage_database(env: dict[str, str]) -> None:
    usage = Path(env["MODELYARD_DATA_DIR"]) / "usage.db"
    holder = sqlite3.connect(usage, isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for longer than the busy timeout
    try:
        result = run(env, "ask", "ERD for a blog")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    refused(result, "locked")
