"""No key leaks: the real `modelyard` command with distinctive fake keys, then a scan of everything.

The cloud emulators echo the keys back in their error bodies, as Google and OpenAI have been
seen to do. Afterwards no byte of either key (nor its first half, which SDKs print when they
mask a key) may appear in the CLI's output, its debug log, or any file of the data directory.
(The chat database is scanned by the browser suite, Studio's thread state by test_studio.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OPENAI_KEY, free_port
from tests.emulators.gemini import GeminiEmulator
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator
from tests.test_gemini import GEMINI_KEY

ROOT = Path(__file__).resolve().parent.parent
KEYS = (OPENAI_KEY, GEMINI_KEY)


def leaks(text: str | bytes) -> list[str]:
    """Which keys (or their first halves) `text` contains."""
    data = text.encode() if isinstance(text, str) else text
    found = []
    for key in KEYS:
        for piece in (key, key[: len(key) // 2]):
            if piece.encode() in data:
                found.append(piece)
    return found


@pytest.fixture
def gemini() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=GEMINI_KEY) as emu:
        yield emu


def test_no_key_in_cli_output_logs_or_data_files(
    tmp_path: Path, ollama: OllamaEmulator, cloud: OpenAIEmulator, gemini: GeminiEmulator
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and "BASE_URL" not in k}
    env |= {
        "MODELYARD_DATA_DIR": str(data),
        "OLLAMA_HOST": ollama.url,
        "OPENAI_BASE_URL": cloud.url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "GOOGLE_GEMINI_BASE_URL": gemini.url,
        "GOOGLE_API_KEY": GEMINI_KEY,
    }
    down = env | {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}

    def cli(run_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ui.cli", "-v", *args],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    outputs = [
        cli(env, "ask", "--task", "erd", "ERD for a blog"),  # local
        cli(down, "ask", "--task", "erd", "--json", "ERD for a blog"),  # Gemini answers
    ]
    gemini.configure(api_key="AIza-another-key", echo_key=True)  # Google echoes the rejected key
    cloud.configure(status_error=(401, f"Incorrect API key provided: {OPENAI_KEY}"))
    outputs.append(cli(down, "ask", "--task", "erd", "--json", "ERD for a blog"))  # both refuse
    outputs += [cli(env, "stats", "--json"), cli(env, "models", "--json")]

    assert outputs[1].returncode == 0 and '"provider": "gemini"' in outputs[1].stdout, outputs[1].stderr
    assert outputs[2].returncode == 3 and "rejected the API key" in outputs[2].stdout
    assert "DEBUG" in "".join(o.stderr for o in outputs)  # the debug log really was written
    for result in outputs:
        assert leaks(result.stdout) == [] and leaks(result.stderr) == [], result.args
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"checkpoints.db", "usage.db"}
    for path in files:
        assert leaks(path.read_bytes()) == [], path
