"""Any change to the Mermaid worker (its DOM shim, a bundle, a snapshot) keeps every verdict.

tests/fixtures/mermaid_verdicts.json holds what the worker answered for every official example
and every Mermaid case of the mistake corpus when it ran on jsdom (stop 17), before it moved to
linkedom: validity, detected type, error line and message, and the details under it. The worker
as it is now must answer each of them identically: its source (worker.mjs), and the bundle with
its code cache that `npm ci` builds from it (run by worker.cjs), which is what the app runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
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


def mutants(codes: list[str]) -> list[str]:
    """Near-misses of each diagram: every one-line deletion, and three seeded one-token insertions."""
    rng = random.Random(7)
    tokens = ["{", "}", "--", ">", '"', ":", ";", "|", "[", "]", " end", "\n"]
    out = []
    for code in codes:
        lines = code.split("\n")
        out += ["\n".join(lines[:i] + lines[i + 1 :]) for i in range(1, len(lines))]
        for _ in range(3):
            at = rng.randrange(len(code))
            out.append(code[:at] + rng.choice(tokens) + code[at:])
    return out


async def verdicts(script: Path, codes: list[str]) -> list[tuple[object, ...]]:
    worker = MermaidWorker(script=script)
    try:
        results = [await worker.parse(code, timeout=10, start_timeout=60) for code in codes]
    finally:
        await worker.aclose()
    return [
        (r.valid, r.diagram_type, r.error, r.line, r.details) if isinstance(r, ParseResult) else (repr(r),)
        for r in results
    ]


async def test_the_bundle_agrees_with_the_source_on_near_misses() -> None:
    """The bundle's three edits to mermaid's config copying (patches.mjs) change no verdict, on
    ~1,800 broken and half-broken variants of the recorded diagrams."""
    codes = mutants([case["code"] for case in json.loads(VERDICTS.read_text(encoding="utf-8"))])
    assert len(codes) > 1500
    source, bundle = await asyncio.gather(verdicts(WORKER_SCRIPT, codes), verdicts(WORKER_BUNDLED, codes))
    assert sum(1 for v in source if v[0] is False) > 300  # most near-misses are invalid; some are not
    differ = [
        (code.splitlines()[:2], a, b) for code, a, b in zip(codes, source, bundle, strict=True) if a != b
    ]
    assert not differ, differ[:3]


@pytest.mark.parametrize("script", [WORKER_SCRIPT, WORKER_BUNDLED], ids=["source", "bundle"])
async def test_a_diagram_s_own_config_counts_and_ends_with_it(script: Path) -> None:
    """A diagram's config (front matter or directive) can decide its verdict: renaming gitGraph's
    main branch makes `checkout main` an error. The bundle keeps one config copy per config and
    reuses the plain config between diagrams without one, so this checks the config follows each
    diagram's own and is not left for the next diagram."""
    body = "gitGraph\n  commit\n  branch dev\n  checkout main\n  commit"
    front = "---\nconfig:\n  gitGraph:\n    mainBranchName: trunk\n---\n"
    directive = "%%{init: {'gitGraph': {'mainBranchName': 'trunk'}}}%%\n"
    codes = [body, front + body, body, directive + body, body]
    valid = [v[0] for v in await verdicts(script, codes)]
    assert valid == [True, False, True, False, True]


def test_a_bundle_older_than_any_of_its_sources_is_not_run(tmp_path: Path) -> None:
    sources = ("worker.mjs", "errors.mjs", "build.mjs", "patches.mjs", "package-lock.json")
    for name in (*sources, "worker.bundle.js"):
        (tmp_path / name).write_text("")
    assert worker_script(tmp_path) == tmp_path / "worker.cjs"
    for name in sources:
        later = (tmp_path / "worker.bundle.js").stat().st_mtime + 10
        os.utime(tmp_path / name, (later, later))
        assert worker_script(tmp_path) == tmp_path / "worker.mjs", name
        os.utime(tmp_path / name, (later - 20, later - 20))
    (tmp_path / "worker.bundle.js").unlink()
    assert worker_script(tmp_path) == tmp_path / "worker.mjs"
