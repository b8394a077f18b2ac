"""Any change to the Mermaid worker (its DOM shim, a bundle, a snapshot) keeps every verdict.

tests/fixtures/mermaid_verdicts.json holds what the worker answered for every official example
and every Mermaid case of the mistake corpus when it ran on jsdom (stop 17), before it moved to
linkedom: validity, detected type, error line and message, and the details under it. The worker
as it is now must answer each of them identically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from validators.mermaid_pool import MermaidWorker, ParseResult

VERDICTS = Path(__file__).parent / "fixtures" / "mermaid_verdicts.json"


async def test_every_recorded_verdict_is_unchanged(mermaid_worker: MermaidWorker) -> None:
    recorded: list[dict[str, Any]] = json.loads(VERDICTS.read_text(encoding="utf-8"))
    assert len(recorded) >= 130 and any(not case["valid"] for case in recorded)
    changed = []
    for case in recorded:
        result = await mermaid_worker.parse(case["code"], timeout=10, start_timeout=60)
        assert isinstance(result, ParseResult), result
        now = {"valid": result.valid, "type": result.diagram_type, "error": result.error, "line": result.line}
        now["details"] = result.details
        was = {key: case[key] for key in now}
        if now != was:
            changed.append((case["code"].splitlines()[0], was, now))
    assert not changed, changed[:3]
