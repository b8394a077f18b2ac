"""Rows on the request path: overhead over a bare ChatOllama stream, the Mermaid check, first
token, throughput and growth. Variants run interleaved so machine noise hits them alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from langchain_ollama import ChatOllama

from bench.emulated import MODEL, PROMPT, config_for, ollama_process
from bench.floor import Rate, bare_graph, floor_added, floor_rate
from bench.results import Row, ms
from graph.router import ModelRouter
from nodes.response import ModelResponse
from services.gc_tuning import settle_after_startup
from validators import Validators

ERD = """erDiagram
    USER ||--o{ POST : writes
    POST ||--o{ COMMENT : has
    USER { int id PK }
    POST { int id PK }
    COMMENT { int id PK }"""
PEER = Path(__file__).with_name("litellm_peer.py")
DOCS_MODEL = "codellama:13b-instruct-q4_K_M"  # the documentation task's model: a check that costs ~nothing
DOC = "# Blog\n\nUsers write posts; readers leave comments under each post.\n"
# Each model answers its own task validly: the ERD by default, and a short Markdown document.
MODELS: dict[str, dict[str, object]] = {
    MODEL: {"reply": f"```mermaid\n{ERD}\n```"},
    DOCS_MODEL: {"reply": DOC},
}


async def _paired(
    n: int, warmup: int, base: Callable[[], Awaitable[None]], measured: Callable[[], Awaitable[None]]
) -> tuple[list[float], list[float]]:
    """Time both, alternating; return (baseline samples, measured-minus-baseline samples)."""
    bases, diffs = [], []
    for i in range(warmup + n):
        started = time.perf_counter()
        await base()
        b = time.perf_counter() - started
        started = time.perf_counter()
        await measured()
        m = time.perf_counter() - started
        if i >= warmup:
            bases.append(b)
            diffs.append(m - b)
    return bases, diffs


def _astream(model: str, url: str) -> Callable[[], Awaitable[None]]:
    bare = ChatOllama(model=model, base_url=url)

    async def run() -> None:
        async for _ in bare.astream(PROMPT):
            pass

    return run


async def _settled(router: ModelRouter) -> ModelRouter:
    """The router once its background start-up is over: learned layers fitted, Mermaid worker
    warm, and the garbage collector settled as the app's start-up settles it."""
    services = router.services
    await asyncio.to_thread(services.classifier.wait_ready, 60)
    services.validators.prepare("mermaid")
    while not services.validators.ready("mermaid"):
        await asyncio.sleep(0.05)
    settle_after_startup()
    return router


def _generate(router: ModelRouter, task: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        response = await router.generate(task, PROMPT)
        assert response.ok, response.error_message

    return run


async def overhead_rows(n: int) -> list[Row]:
    """`overhead` (ERD, Mermaid check) and `overhead_graph` (a check that costs ~nothing)."""
    with ollama_process(MODELS) as url, tempfile.TemporaryDirectory() as data:
        async with ModelRouter(config_for(url, Path(data))) as router:
            await _settled(router)
            erd_base, erd = await _paired(n, 20, _astream(MODEL, url), _generate(router, "erd"))
            docs_base, docs = await _paired(
                n, 20, _astream(DOCS_MODEL, url), _generate(router, "documentation")
            )
        floor = await floor_added(url, n, DOCS_MODEL, _astream(DOCS_MODEL, url))  # same server, after
        peer = await litellm_added(url, n)
    rows = []
    for name, what, base, diff, target in (
        (
            "overhead",
            "router added over ChatOllama: ERD, Mermaid check, checkpoint, usage row",
            erd_base,
            erd,
            (6, 10),
        ),
        (
            "overhead_graph",
            "the same with the documentation check (~0 ms) instead of Mermaid",
            docs_base,
            docs,
            (3, None),
        ),
    ):
        median, p95 = ms(diff)
        met = median <= target[0] and (target[1] is None or p95 <= target[1])
        goal = f"p50 <= {target[0]} ms" + (f", p95 <= {target[1]} ms" if target[1] else "")
        rows.append(
            Row(name, what, goal, met, median, p95, baseline_median_ms=ms(base)[0], samples=len(diff))
        )
    rows[0].detail = peer
    rows[1].detail = {"floor_added_ms": floor}
    return rows


LITELLM = "litellm==1.110.2"  # the bench-only peer, in a throwaway environment of its own


async def litellm_added(url: str, n: int) -> dict[str, object]:
    """LiteLLM's Router (one cloud fallback configured, no validation) against the same emulator:
    its median beside a bare ChatOllama's, measured right after it in the same run."""
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no fetch from the internet
    args = [uv, "run", "--isolated", "--no-project", "--with", LITELLM, "python", str(PEER), url]
    done = await asyncio.to_thread(
        subprocess.run, [*args, "http://127.0.0.1:9/v1", str(n)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        return {"litellm_router": f"not measured: {done.stderr.strip().splitlines()[-1:]}"}
    peer = [float(x) for x in json.loads(done.stdout.strip().splitlines()[-1])]
    bare = _astream(MODEL, url)
    base = []
    for _ in range(n):
        started = time.perf_counter()
        await bare()
        base.append(time.perf_counter() - started)
    return {
        "litellm_router_median_ms": ms(peer)[0],
        "litellm_router_p95_ms": ms(peer)[1],
        "chatollama_median_ms": ms(base)[0],
        "litellm_router_added_ms": round(ms(peer)[0] - ms(base)[0], 2),
    }


async def validate_warm_row(n: int) -> Row:
    """The Mermaid check of one small ERD, the worker warm."""
    async with Validators() as validators:
        for _ in range(20):
            assert (await validators.check("mermaid", ERD)).valid
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await validators.check("mermaid", ERD)
            samples.append(time.perf_counter() - started)
    median, p95 = ms(samples)
    return Row(
        "validate_warm",
        "Mermaid check, warm worker, per diagram",
        "p50 <= 2 ms",
        median <= 2,
        median,
        p95,
        samples=n,
    )


async def first_token_row(n: int) -> Row:
    """Request start to the first token event in the graph's stream, minus ChatOllama's own first chunk."""
    with ollama_process() as url, tempfile.TemporaryDirectory() as data:
        bare = ChatOllama(model=MODEL, base_url=url)

        async def base() -> None:
            async for _ in bare.astream(PROMPT):
                return

        async with ModelRouter(config_for(url, Path(data))) as router:
            await _settled(router)
            # Each request is drained to its end; only its first token's moment counts.
            bases, diffs = [], []
            for i in range(10 + n):
                started = time.perf_counter()
                await base()
                b = time.perf_counter() - started
                started = time.perf_counter()
                first = None
                async for item in router.stream(PROMPT, task_type="erd"):
                    if first is None and not isinstance(item, ModelResponse) and item.get("kind") == "token":
                        first = time.perf_counter() - started
                if i >= 10 and first is not None:
                    bases.append(b)
                    diffs.append(first - b)
    median, p95 = ms(diffs)
    return Row(
        "first_token",
        "first token in the graph's stream, minus a bare ChatOllama's first chunk",
        "p50 < 10 ms",
        median < 10,
        median,
        p95,
        baseline_median_ms=ms(bases)[0],
        samples=len(diffs),
    )


THROUGHPUT_ROUNDS = 3


async def throughput_row(total: int) -> Row:
    """Requests per second at concurrency 1, 10 and 50 (checkpoints on); every request one usage row.

    Three rounds, each the router at 1, 10 and 50 and then the bare graph (the floor) at 50, on
    the same emulator: noise hits both alike, and each rate is the median of its three.
    """
    rates: dict[int, list[Rate]] = {1: [], 10: [], 50: []}
    floors: list[Rate] = []
    with ollama_process() as url, tempfile.TemporaryDirectory() as data:
        async with ModelRouter(config_for(url, Path(data))) as router, bare_graph(url) as bare:
            await _concurrently(await _settled(router), 50, 50)  # warm
            await floor_rate(bare, 50, 50)
            for _ in range(THROUGHPUT_ROUNDS):
                for concurrency, measured in rates.items():
                    before = _usage_count(Path(data))
                    started, cpu = time.perf_counter(), time.process_time()
                    await _concurrently(router, total, concurrency)
                    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                    measured.append(Rate(total / wall, cpu / total * 1000))
                    assert _usage_count(Path(data)) - before == total, "a usage row was lost or doubled"
                floors.append(await floor_rate(bare, total, 50))
    median = {c: _median_rate(r) for c, r in rates.items()}
    floor = _median_rate(floors)
    return Row(
        "throughput",
        f"requests/s at concurrency 1, 10, 50 ({total} requests each, median of "
        f"{THROUGHPUT_ROUNDS} rounds); no usage row lost or doubled",
        ">= 200/s at 50",
        median[50].per_second >= 200,
        per_second=round(median[50].per_second, 1),
        samples=THROUGHPUT_ROUNDS * 3 * total,
        detail={
            "per_second_by_concurrency": {str(c): round(r.per_second, 1) for c, r in median.items()},
            "per_second_at_50_by_round": [round(r.per_second, 1) for r in rates[50]],
            "cpu_ms_per_request_at_50": round(median[50].cpu_ms, 2),
            "floor_per_second_at_50": round(floor.per_second, 1),
            "floor_per_second_at_50_by_round": [round(r.per_second, 1) for r in floors],
            "floor_cpu_ms_per_request_at_50": round(floor.cpu_ms, 2),
        },
    )


def _median_rate(rates: list[Rate]) -> Rate:
    """The round with the median rate (its own CPU figure with it)."""
    return sorted(rates)[len(rates) // 2]


async def _concurrently(router: ModelRouter, total: int, concurrency: int) -> None:
    """`total` ERD requests, each on a new thread, at most `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            response = await router.generate("erd", f"ERD for shop {i}", thread_id=uuid.uuid4().hex)
            assert response.ok, response.error_message

    await asyncio.gather(*(one(i) for i in range(total)))


def _usage_count(data: Path) -> int:
    with sqlite3.connect(data / "usage.db") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM requests").fetchone()
    return int(count)


async def growth_row(n: int) -> Row:
    """`overhead` with 1, 100 and 10,000 earlier threads in the checkpoints and 100,000 usage rows.

    Three data directories, one router on each, all open at once and measured in turn, each
    request beside its own bare ChatOllama baseline: noise hits the three sizes alike.
    """
    sizes = (1, 100, 10_000)
    diffs: dict[int, list[float]] = {size: [] for size in sizes}
    with ollama_process() as url, tempfile.TemporaryDirectory() as root:
        configs = {size: config_for(url, Path(root) / f"threads-{size}") for size in sizes}
        for size, config in configs.items():
            async with ModelRouter(config) as router:
                await _generate(router, "erd")()  # the thread the others are copied from
            _grow(config.data_dir, size, 100_000 if size == 10_000 else 0)
        async with contextlib.AsyncExitStack() as stack:
            routers = {size: await stack.enter_async_context(ModelRouter(c)) for size, c in configs.items()}
            for router in routers.values():
                await _settled(router)
            bare = _astream(MODEL, url)
            for i in range(20 + n):
                for size, router in routers.items():
                    base, diff = await _paired(1, 0, bare, _generate(router, "erd"))
                    if i >= 20:
                        diffs[size] += diff
    medians = {str(size): ms(d)[0] for size, d in diffs.items()}
    spread = max(medians.values()) - min(medians.values())
    return Row(
        "growth",
        "overhead at 1, 100 and 10,000 earlier threads (and 100,000 usage rows at 10,000), interleaved",
        "flat within 1 ms",
        spread <= 1.0,
        median_ms=round(spread, 2),
        samples=3 * n,
        detail={"overhead_median_ms_by_threads": medians},
    )


def _grow(data: Path, threads: int, usage_rows: int) -> None:
    """Copy the first thread's checkpoints until `threads` threads exist; add usage rows likewise."""
    with sqlite3.connect(data / "checkpoints.db") as db:
        (have,) = db.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()
        (seed,) = db.execute("SELECT thread_id FROM checkpoints LIMIT 1").fetchone()
        more = threads - int(have)
        if more > 0:
            series = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {more})"
            for table in ("checkpoints", "writes"):
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                picked = ", ".join(f"'grown-{have}-' || i" if c == "thread_id" else c for c in columns)
                db.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) {series} "
                    f"SELECT {picked} FROM {table}, n WHERE thread_id = ?",
                    (seed,),
                )
    if usage_rows:
        with sqlite3.connect(data / "usage.db") as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(requests)") if row[1] != "id"]
            series = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {usage_rows})"
            db.execute(
                f"INSERT INTO requests ({', '.join(columns)}) {series} "
                f"SELECT {', '.join(columns)} FROM (SELECT * FROM requests LIMIT 1), n"
            )
