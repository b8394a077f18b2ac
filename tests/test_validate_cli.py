"""`modelyard validate` and `ask`'s exit code 3, run as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import MERMAID
from tests.conftest import run_cli as run
from tests.emulators.ollama import OllamaEmulator

BROKEN = "Sure! Here it is:\n```mermaid\nflowchart TD\n  start --> end\n```\nEnjoy."


def _env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OPENAI_BASE_URL"}
    return clean | {"MODELYARD_DATA_DIR": str(tmp_path / "data")}


def test_validate_a_file_and_stdin_with_the_graphs_validators(tmp_path: Path) -> None:
    good = tmp_path / "erd.md"
    good.write_text("Here is the ERD:\n\n```mermaid\nerDiagram\n  USER ||--o{ POST : writes\n```\n")
    valid = run(_env(tmp_path), "validate", "--task", "erd", str(good))
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout == "erDiagram\n  USER ||--o{ POST : writes\n"

    code = run(_env(tmp_path), "validate", "--task", "code", "-", stdin="```python\ndef f(:\n    pass\n```")
    assert code.returncode == 1 and code.stdout == ""
    assert code.stderr == "invalid: SyntaxError at line 1: invalid syntax\n  1 | def f(:\n"

    invalid = run(_env(tmp_path), "validate", "--task", "mermaid", "-", "--json", stdin=BROKEN)
    assert invalid.returncode == 1, invalid.stderr
    verdict = json.loads(invalid.stdout)
    assert set(verdict) == {"valid", "error", "diagram_type", "artifact"}
    assert (verdict["valid"], verdict["diagram_type"]) == (False, "flowchart")
    assert verdict["error"].startswith("line 2: unexpected 'end'")
    assert verdict["artifact"] == "flowchart TD\n  start --> end"


def test_validate_usage_errors_exit_2(tmp_path: Path) -> None:
    unknown = run(_env(tmp_path), "validate", "--task", "poem", "-", stdin="roses")
    assert unknown.returncode == 2 and "unknown task type 'poem'" in unknown.stderr
    missing = run(_env(tmp_path), "validate", "--task", "jira", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_ask_local_only_with_an_unrepairable_diagram_exits_3(tmp_path: Path, ollama: OllamaEmulator) -> None:
    ollama.update_model(MERMAID, reply=BROKEN)
    env = _env(tmp_path) | {"OLLAMA_HOST": ollama.url}
    result = run(env, "ask", "--task", "mermaid", "--local-only", "--json", "flowchart of a login")
    assert result.returncode == 3, result.stderr
    response = json.loads(result.stdout)
    assert response["valid"] is False and response["content"] == "flowchart TD\n  start --> end"
    assert response["validation_error"].startswith("line 2: unexpected 'end'")
    assert "Mermaid invalid (line 2: unexpected 'end'" in result.stderr
