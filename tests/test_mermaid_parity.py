"""Any change to the Mermaid worker (its DOM shim, a bundle, a snapshot) keeps every verdict.

tests/fixtures/mermaid_verdicts.json holds what the worker answered for every official example
and every Mermaid case of the mistake corpus when it ran on jsdom (stop 17), before it moved to
linkedom: validity, detected type, error line and message, and the details under it. The worker
as it is now must answer each of them identically: its source (worker.mjs), and the bundle with
its code cache that `npm ci` builds from it (run by worker.cjs), which is what the app runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from validators.mermaid_pool import MermaidWorker, ParseResult
from validators.mermaid_process import WORKER_BUNDLED, WORKER_DIR, WORKER_SCRIPT, worker_script

VERDICTS = Path(__file__).parent / "fixtures" / "mermaid_verdicts.json"


def test_the_bundle_is_built_and_is_what_runs() -> None:
    assert (WORKER_DIR / "worker.bundle.js").exists(), (
        "run `npm ci` in validators/mermaid_worker (it builds the bundle)"
    )
    assert worker_script() == WORKER_BUNDLED


@pytest.mark.parametrize("script", [WORKER_SCRIPT, WORKER_BUNDLED], ids=["source", "bundle"])
async def test_every_recorded_verdict_is_unchanged(script: Path) -> None:
    recorded: list[dict[str, Any]] = json.loads(VERDICTS.read_text(encoding="utf-8"))
    assert len(recorded) >= 130 and any(not case["valid"] for case in recorded)
    changed = []
    worker = MermaidWorker(script=script)
    try:
        results = [await worker.parse(case["code"], timeout=10, start_timeout=60) for case in recorded]
    finally:
        await worker.aclose()
    for case, result in zip(recorded, results, strict=True):
        assert isinstance(result, ParseResult), result
        now = {"valid": result.valid, "type": result.diagram_type, "error": result.error, "line": result.line}
        now["details"] = result.details
        was = {key: case[key] for key in now}
        if now != was:
            changed.append((case["code"].splitlines()[0], was, now))
    assert not changed, changed[:3]


def test_a_bundle_older_than_any_of_its_sources_is_not_run(tmp_path: Path) -> None:
    for name in ("worker.mjs", "errors.mjs", "build.mjs", "package-lock.json", "worker.bundle.js"):
        (tmp_path / name).write_text("")
    assert worker_script(tmp_path) == tmp_path / "worker.cjs"
    for name in ("worker.mjs", "errors.mjs", "build.mjs", "package-lock.json"):
        later = (tmp_path / "worker.bundle.js").stat().st_mtime + 10
        os.utime(tmp_path / name, (later, later))
        assert worker_script(tmp_path) == tmp_path / "worker.mjs", name
        os.utime(tmp_path / name, (later - 20, later - 20))
    (tmp_path / "worker.bundle.js").unlink()
    assert worker_script(tmp_path) == tmp_path / "worker.mjs"
