"""The servers the benchmarks run against: the Ollama emulator in its own process, instant replies."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config import AppConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "ERD for a blog with users, posts and comments"
MODEL = "mermaid-mistral"


@contextmanager
def ollama_process(models: dict[str, dict[str, object]] | None = None) -> Iterator[str]:
    """An Ollama emulator in its own process (so it does not share our GIL); yields its URL.

    `models`: the model specs it serves (tests/emulators/ollama.py's --config); None, its defaults.
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "tests.emulators.ollama", "--port", "0"]
        if models:
            spec = Path(tmp) / "models.json"
            spec.write_text(json.dumps({"models": models}), encoding="utf-8")
            args += ["--config", str(spec)]
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        finally:
            proc.terminate()
            proc.wait()


def config_for(url: str, data_dir: Path, **env: str) -> AppConfig:
    """The default routing table against `url`, data in `data_dir`, no cloud unless `env` adds one."""
    return load_config(env={"OLLAMA_HOST": url, "MODELYARD_DATA_DIR": str(data_dir), **env})
