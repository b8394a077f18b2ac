"""The real Mermaid parser in its Node worker: official examples, lifecycle, faults, fallbacks."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from config.schema import ValidationConfig
from validators import MermaidWorker, ParseFailure, ParseResult, Validators
from validators.mermaid_header import kind_of_type
from validators.mermaid_process import WORKER_BUNDLED, WORKER_DIR, WORKER_SCRIPT

TIMEOUTS = {"timeout": 5.0, "start_timeout": 30.0}


@functools.cache
def official_examples() -> list[tuple[str, str, str]]:
    """(diagram id, title, code) of every example in the pinned @mermaid-js/examples package."""
    script = "import('@mermaid-js/examples').then(m => console.log(JSON.stringify(m.diagramData)))"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=WORKER_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    data: list[dict[str, Any]] = json.loads(out)
    return [(d["id"], e["title"], e["code"]) for d in data for e in d["examples"]]


def _example_params() -> list[Any]:
    return [pytest.param(i, c, id=f"{i}-{t}") for i, t, c in official_examples()]


def test_the_examples_package_covers_every_type() -> None:
    examples = official_examples()
    assert len(examples) == 76
    assert {kind_of_type(i) for i, _, _ in examples} >= {"flowchart", "er", "sequence", "class", "state"}


@pytest.mark.parametrize(("diagram_id", "code"), _example_params())
async def test_official_example_is_valid_raw_fenced_and_with_chatter(diagram_id: str, code: str) -> None:
    kind = kind_of_type(diagram_id)
    variants = {
        "raw": code,
        "fenced with chatter": f"Sure! Here is the diagram:\n\n```mermaid\n{code}\n```\n\nAnything else?",
        "unfenced with preamble": f"Here is the diagram you asked for.\n\n{code.strip()}\n",
    }
    async with Validators() as validators:
        for name, text in variants.items():
            verdict = await validators.check("mermaid", text)
            assert verdict.valid, f"{name}: {verdict.error}"
            assert verdict.diagram_type == kind, name
            assert verdict.warning is None
            assert "```" not in verdict.artifact


async def test_a_valid_diagram_of_another_kind_is_a_mismatch() -> None:
    async with Validators() as validators:
        flow = await validators.check("mermaid", "flowchart TD\n  A --> B", expect_kind="er")
        broken = await validators.check("mermaid", "flowchart TD\n  A -> B", expect_kind="er")
    assert not flow.valid and flow.diagram_type == "flowchart"
    assert flow.error == "expected an er diagram (erDiagram), got flowchart"
    assert broken.error is not None and broken.error.startswith("expected an er diagram")
    assert "it does not parse either: line 2: unexpected '-'" in broken.error


async def test_errors_name_the_users_line_despite_front_matter_directives_and_comments() -> None:
    text = (
        "---\ntitle: Blog\n---\n%%{init: {\n  'theme': 'dark'\n}}%%\n"
        "erDiagram\n  %% users write posts\n\n  USER ||--o{ POST : writes\n  POST ||--o{ COMMENT\n"
    )
    async with Validators() as validators:
        verdict = await validators.check("mermaid", text, expect_kind="er")
    assert not verdict.valid and verdict.line == 11
    assert verdict.error == "line 11: unexpected end of line"
    assert verdict.details == (
        "  11 |   POST ||--o{ COMMENT\n     |                      ^\nexpected: 'COLON', 'STYLE_SEPARATOR'"
    )


async def test_many_concurrent_checks_are_multiplexed_on_one_process(mermaid_worker: MermaidWorker) -> None:
    codes = [f"flowchart TD\n  A{i} --> B{i}" if i % 2 else f"flowchart TD\n  A{i} -> B" for i in range(40)]
    async with Validators() as validators:
        await validators.check("mermaid", codes[1])
        pid, starts = mermaid_worker.pid, mermaid_worker.starts
        verdicts = await asyncio.gather(*(validators.check("mermaid", c) for c in codes))
    assert [v.valid for v in verdicts] == [bool(i % 2) for i in range(40)]
    assert all(v.line == 2 for v in verdicts if not v.valid)
    assert (mermaid_worker.pid, mermaid_worker.starts) == (pid, starts)


def test_the_shared_worker_serves_every_event_loop(mermaid_worker: MermaidWorker) -> None:
    async def pid_after_check() -> int | None:
        async with Validators() as validators:
            assert (await validators.check("mermaid", 'pie\n  "a" : 1')).valid
        return mermaid_worker.pid

    first, second = asyncio.run(pid_after_check()), asyncio.run(pid_after_check())
    assert first is not None and first == second


async def test_a_check_does_not_wait_for_the_loop_that_holds_the_pipes(mermaid_worker: MermaidWorker) -> None:
    """Once the worker runs, a check goes over the caller's own socket, not through the pipes' thread."""
    assert isinstance(await mermaid_worker.parse("flowchart TD\n  A --> B", **TIMEOUTS), ParseResult)
    released = threading.Event()

    async def hold_the_background_loop() -> None:
        time.sleep(3)  # blocks that loop's thread: no pipe I/O until it returns
        released.set()

    mermaid_worker._loop.submit(hold_the_background_loop())
    result = await mermaid_worker.parse("erDiagram\n  A ||--o{ B : has", **TIMEOUTS)
    answered_while_held = not released.is_set()
    released.wait(5)
    assert isinstance(result, ParseResult) and result.valid and result.diagram_type == "er"
    assert answered_while_held


async def test_warm_up_parses_a_sample_of_every_type(mermaid_worker: MermaidWorker) -> None:
    async with Validators() as validators:
        assert (await validators.check("mermaid", "erDiagram\n  A ||--o{ B : has")).valid
    deadline = time.monotonic() + 30
    while mermaid_worker.warm is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert mermaid_worker.warm is not None
    assert mermaid_worker.warm["failed"] == [] and mermaid_worker.warm["types"] >= 30


async def test_a_worker_killed_mid_request_is_respawned_and_the_request_answered(
    mermaid_worker: MermaidWorker,
) -> None:
    assert isinstance(await mermaid_worker.parse("flowchart TD\n  A --> B", **TIMEOUTS), ParseResult)
    pid, starts = mermaid_worker.pid, mermaid_worker.starts
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # frozen: the next request is sent and stays in flight
    pending = asyncio.ensure_future(mermaid_worker.parse("sequenceDiagram\n  A->>B: hi", **TIMEOUTS))
    await asyncio.sleep(0.2)
    assert not pending.done()
    os.kill(pid, signal.SIGKILL)
    result = await pending
    assert isinstance(result, ParseResult) and result.valid and result.diagram_type == "sequence"
    assert mermaid_worker.starts == starts + 1 and mermaid_worker.pid not in (None, pid)


async def test_a_hung_worker_fails_the_diagram_and_is_replaced(mermaid_worker: MermaidWorker) -> None:
    async with Validators(ValidationConfig(mermaid_timeout=0.5)) as validators:
        assert (await validators.check("mermaid", "flowchart TD\n  A --> B")).valid
        hung, starts = mermaid_worker.pid, mermaid_worker.starts
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)  # a frozen parser, as if the diagram hung it
        started = time.perf_counter()
        verdict = await validators.check("mermaid", "flowchart TD\n  A --> B")
        assert time.perf_counter() - started < 2
        # Never a pass: the diagram is invalid with the reason, and the worker is replaced.
        assert not verdict.valid and verdict.diagram_type == "flowchart"
        assert (
            verdict.error
            == "the Mermaid parser did not answer within 0.5 s; the diagram could not be validated"
        )
        with pytest.raises(ProcessLookupError):
            os.kill(hung, 0)  # killed and reaped, not left behind
        again = await validators.check("mermaid", "flowchart TD\n  A --> B")
        assert again.valid and mermaid_worker.pid not in (None, hung) and mermaid_worker.starts == starts + 1


async def test_without_node_the_header_check_answers_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    worker = MermaidWorker(node="/nonexistent/bin/node")
    async with Validators(mermaid_worker=worker) as validators:
        good = await validators.check(
            "mermaid", "```mermaid\nerDiagram\n  A ||--o{ B : has\n```", expect_kind="er"
        )
        bad_header = await validators.check("mermaid", "Here it is: A -> B")
    assert good.valid and good.diagram_type == "er"
    assert good.warning is not None
    assert good.warning.startswith("Mermaid parser unavailable (Node.js not found ('/nonexistent/bin/node'")
    assert good.warning.endswith("only the diagram header was checked")
    assert not bad_header.valid and bad_header.warning is not None
    assert "Mermaid is checked by its header only" in caplog.text
    assert worker.starts == 0


async def test_a_worker_that_cannot_start_says_why(tmp_path: Path) -> None:
    script = tmp_path / "worker.mjs"
    script.write_text("import 'no-such-package';\n")
    worker = MermaidWorker(script=script)
    try:
        outcome = await worker.parse("flowchart TD\n  A --> B", **TIMEOUTS)
    finally:
        await worker.aclose()
    assert isinstance(outcome, ParseFailure) and outcome.kind == "unavailable"
    assert outcome.message.startswith("the Mermaid worker failed to start: exit code 1")
    assert "no-such-package" in outcome.message


STUB_WORKER = """\
import { createInterface } from 'node:readline';
console.log(JSON.stringify({ event: 'ready', mermaid: 'stub' }));
createInterface({ input: process.stdin }).on('line', (line) => {
  const { id } = JSON.parse(line);
  console.log(JSON.stringify({ id, valid: true, type: 'flowchart-v2', ms: 0 }));
});
"""


async def test_aclose_stops_the_worker_and_a_later_check_starts_it_again(tmp_path: Path) -> None:
    # Lifecycle only: a stub that speaks the protocol starts in milliseconds, not a second.
    script = tmp_path / "worker.mjs"
    script.write_text(STUB_WORKER)
    worker = MermaidWorker(script=script)
    validators = Validators(mermaid_worker=worker)
    assert (await validators.check("mermaid", "flowchart TD\n  A --> B")).valid
    pid = worker.pid
    assert pid is not None
    await validators.aclose()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    async with Validators(mermaid_worker=worker) as again:
        assert (await again.check("mermaid", "flowchart TD\n  A --> B")).valid
        assert worker.starts == 2
    assert worker.pid is None


def test_a_process_that_forgets_to_close_leaves_no_worker_behind() -> None:
    script = (
        "import asyncio\n"
        "from validators import Validators, shared_worker\n"
        "async def main():\n"
        "    validators = Validators()  # never closed\n"
        "    assert (await validators.check('mermaid', 'flowchart TD\\n  A --> B')).valid\n"
        "    worker = shared_worker()\n"
        "    print(worker.pid, worker._process.socket)\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    pid, socket = done.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(socket).parent.exists()  # the socket's private directory went with the worker
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr


@pytest.mark.parametrize("script", [WORKER_SCRIPT, WORKER_BUNDLED], ids=["source", "bundle"])
def test_a_request_at_start_is_answered_before_the_warm_up_of_every_type(script: Path) -> None:
    # The bundle loads each parser without I/O: unless the warm-up yields, stdin waits for all of it.
    request = json.dumps({"id": 1, "code": "erDiagram\n  A ||--o{ B : has"}) + "\n"
    done = subprocess.run(
        ["node", script.name],
        input=request,
        cwd=WORKER_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "ready"
    assert events[1] == {"id": 1, "valid": True, "type": "er", "ms": events[1]["ms"]}
