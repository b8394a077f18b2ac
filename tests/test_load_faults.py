"""Load with faults: 1,000 requests at concurrency 20 through one ModelRouter, 20% of them faulty.

Each faulty request is routed to a model whose emulated server misbehaves in one way from the
fault matrix (chosen at random with a fixed seed), half of them with force local on. Every
request must end in an artifact or a clear error within its limits, and the usage table must
hold exactly one row per request sent: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from config.schema import TaskRoute
from graph.router import ModelRouter
from nodes.response import ModelResponse
from tests.conftest import MERMAID, Rig
from tests.emulators._ollama_defaults import MERMAID_REPLY
from tests.emulators._ollama_models import NO_GPU_FIT, PROXY_502, spec_from_fields

REQUESTS = 1_000
CONCURRENCY = 20
FAULT_SHARE = 0.2
# One emulated model per fault; the healthy task uses the real default model.
FAULTS: dict[str, dict[str, object]] = {
    "f-error-line": {"error_after": 1},
    "f-garbage": {"garbage_after": 1},
    "f-reset": {"reset_after": 1},
    "f-missing": {"installed": False, "pullable": False},
    "f-oom": {"load_error": NO_GPU_FIT},
    "f-stall": {"stall_after": 1},
    "f-proxy-502": {"raw_error": PROXY_502},
    "f-empty": {"reply": ""},
    "f-slow-first-token": {"first_token_delay": 4.0},
}
# The limits: generous enough that 20 requests at once on two cores meet them when nothing is wrong.
FIRST_TOKEN_S, LOAD_S, GENERATION_S, CLOUD_S = 1.0, 0.5, 1.0, 1.0
# The longest a request may take: first token (with load allowance) + generation + cloud call.
REQUEST_LIMIT_S = FIRST_TOKEN_S + LOAD_S + GENERATION_S + CLOUD_S


async def test_thousand_requests_with_faults_lose_nothing(rig: Rig) -> None:
    for name, fields in FAULTS.items():
        rig.ollama.set_model(name, spec_from_fields({"reply": MERMAID_REPLY} | fields))
    base = rig.config(
        first_token_timeout=FIRST_TOKEN_S, load_timeout=LOAD_S, timeout=GENERATION_S, max_retries=0
    )
    tasks = dict(base.routing.tasks) | {
        name: TaskRoute(model=name, validator="mermaid", expect_kind="er") for name in FAULTS
    }
    config = base.model_copy(
        update={
            "routing": base.routing.model_copy(update={"tasks": tasks}),
            "fallback": base.fallback.model_copy(update={"timeout": CLOUD_S}),
        }
    )
    rng = random.Random(8)
    plan = [
        (rng.choice(list(FAULTS)), rng.random() < 0.5) if rng.random() < FAULT_SHARE else ("erd", False)
        for _ in range(REQUESTS)
    ]
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: list[ModelResponse] = []
    healthy_outcomes: list[ModelResponse] = []

    async with ModelRouter(config) as router:
        # The load starts once the app has started: this config's task types are its own, so the
        # learned layers are fitted for it now (~6 s of CPU in a child process, once per machine,
        # then cached). On a 2-core machine that fit would take a core from the timed requests.
        assert await asyncio.to_thread(router.services.classifier.wait_ready, 60)

        async def one(i: int, task: str, force_local: bool) -> None:
            async with gate, asyncio.timeout(REQUEST_LIMIT_S + 2.0):  # none may hang past its limits
                stream = router.stream(
                    f"ERD for shop {i}", task_type=task, thread_id=f"load-{i}", force_local=force_local
                )
                got = [item async for item in stream if isinstance(item, ModelResponse)]
                outcomes.extend(got)
                if task == "erd":
                    healthy_outcomes.extend(got)

        async with asyncio.TaskGroup() as group:
            for i, (task, force_local) in enumerate(plan):
                group.create_task(one(i, task, force_local))
        totals = router.services.usage.count()

    assert len(outcomes) == REQUESTS
    for response in outcomes:  # an artifact, or a clear error: never neither
        assert response.ok or response.error_message, response
        assert "Traceback" not in (response.error_message or "")
    assert totals == REQUESTS, f"usage rows {totals} for {REQUESTS} requests"
    kinds = Counter("local" if r.ok and not r.is_fallback else "cloud" if r.ok else "error" for r in outcomes)
    missed = [r for r in healthy_outcomes if not (r.ok and not r.is_fallback)]
    assert missed == [], [(r.thread_id, r.fallback_reason, r.warning) for r in missed[:3]]
    assert kinds["error"] > 0 and kinds["cloud"] > 0  # the faults were really injected
    assert rig.ollama.load_count(MERMAID) == 1  # one load however many asked at once
