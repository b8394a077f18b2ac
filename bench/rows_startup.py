"""Rows on start-up: `modelyard validate` and `modelyard ask` wall time, and a fresh app's first request."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.emulated import PROMPT, ROOT, ollama_process
from bench.results import Row, ms
from bench.rows_request import ERD

MODELYARD = str(Path(sys.executable).with_name("modelyard"))


def _wall(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return took


def startup_rows(n: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as data, ollama_process() as url:
        env = {**os.environ, "OLLAMA_HOST": url, "MODELYARD_DATA_DIR": data}
        diagram = Path(data) / "blog.mmd"
        diagram.write_text(ERD, encoding="utf-8")
        validate = [_wall([MODELYARD, "validate", "--task", "erd", str(diagram)], env) for _ in range(n)]
        median, p95 = ms(validate)
        rows.append(
            Row(
                "validate_cli",
                "`modelyard validate` of one diagram, cold, wall",
                "<= 1.0 s",
                median <= 1000,
                median,
                p95,
                samples=n,
            )
        )
        imports, asks = [], []
        for i in range(n):  # interleaved: the baseline and the command see the same machine
            imports.append(_wall([sys.executable, "-c", "import langgraph.graph"], env))
            asks.append(_wall([MODELYARD, "ask", "--task", "erd", "-q", "--thread", f"t{i}", PROMPT], env))
        median, p95 = ms([a - b for a, b in zip(asks, imports, strict=True)])
        rows.append(
            Row(
                "cli_ask",
                "`modelyard ask` wall minus `python -c 'import langgraph.graph'` in the same run",
                "<= +1.0 s",
                median <= 1000,
                median,
                p95,
                baseline_median_ms=ms(imports)[0],
                samples=n,
                detail={"ask_wall_median_ms": ms(asks)[0]},
            )
        )
        firsts = []
        for i in range(n):
            fresh = Path(data) / f"first-{i}"
            done = subprocess.run(
                [sys.executable, "-m", "bench.first_request", url, str(fresh)],
                cwd=ROOT, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            firsts.append(float(done.stdout.strip()))
        median, p95 = ms(firsts)
        rows.append(
            Row(
                "first_request",
                "first request after app start (checker started with it), instant model, in-graph",
                "<= 0.5 s",
                median <= 500,
                median,
                p95,
                samples=n,
            )
        )
    return rows
