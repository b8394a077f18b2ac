"""Rows on the failure path: how fast the router gives up on Ollama and reaches the cloud, and
that fifty requests for one cold model cause exactly one load."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.emulated import MODEL, PROMPT, config_for
from bench.results import Row, ms
from graph.router import ModelRouter
from nodes.response import ModelResponse
from tests.conftest import free_port
from tests.emulators._ollama_defaults import default_models
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator

KEY = "sk-bench-0123456789abcdefghij"


async def _to_cloud(
    url: str, cloud: OpenAIEmulator, n: int, *, fresh: bool = False, **ollama: float
) -> list[float]:
    """Seconds from each request's start to its cloud call (the `cloud_fallback` step starting),
    after `n` requests fall back to an instant cloud. `fresh`: a new router and data dir each time
    (a model that timed out is otherwise skipped at once by its cool-down)."""
    samples = []
    for i in range(n if fresh else 1):
        with tempfile.TemporaryDirectory() as data:
            config = config_for(url, Path(data), OPENAI_API_KEY=KEY, OPENAI_BASE_URL=cloud.url)
            if ollama:
                config = config.model_copy(update={"ollama": config.ollama.model_copy(update=ollama)})
            async with ModelRouter(config) as router:
                for j in range(1 if fresh else 5 + n):
                    took = await _until_cloud(router, f"{PROMPT} {i}-{j}")
                    if fresh or j >= 5:
                        samples.append(took)
    return samples


async def _until_cloud(router: ModelRouter, prompt: str) -> float:
    started = time.perf_counter()
    took = None
    async for item in router.stream(prompt, task_type="erd"):
        if isinstance(item, ModelResponse):
            assert item.is_fallback and item.ok, item.error_message
        elif took is None and item.get("node") == "cloud_fallback":
            took = time.perf_counter() - started
    assert took is not None, "the request never reached the cloud"
    return took


async def _stalled_generation(cloud: OpenAIEmulator, limit: float, runs: int) -> list[float]:
    """How long past `limit` each stalled generation is given up (its start to the cloud step)."""
    models = default_models()
    over = []
    with OllamaEmulator(models={MODEL: models[MODEL]}) as stalled:
        stalled.update_model(MODEL, first_token_delay=3600.0)
        for i in range(runs):  # a fresh data dir each time: a timeout starts the model's cool-down
            with tempfile.TemporaryDirectory() as data:
                config = config_for(stalled.url, Path(data), OPENAI_API_KEY=KEY, OPENAI_BASE_URL=cloud.url)
                config = config.model_copy(
                    update={"ollama": config.ollama.model_copy(update={"first_token_timeout": limit})}
                )
                async with ModelRouter(config) as router:
                    generating = None
                    async for item in router.stream(f"{PROMPT} {i}", task_type="erd"):
                        if isinstance(item, ModelResponse):
                            continue
                        if item.get("node") == "local_generate" and generating is None:
                            generating = time.perf_counter()
                        elif item.get("node") == "cloud_fallback" and generating is not None:
                            over.append(time.perf_counter() - generating - limit)
                            generating = None
    return over


async def fault_rows(n: int) -> list[Row]:
    rows = []
    with OpenAIEmulator() as cloud:
        cloud.configure(reply="```mermaid\nerDiagram\n    USER ||--o{ POST : writes\n```")
        down = await _to_cloud(f"http://127.0.0.1:{free_port()}", cloud, n)
        with OllamaEmulator(models={}) as empty:
            missing = await _to_cloud(empty.url, cloud, n)
        for name, what, samples in (
            ("down", "request start to the cloud call when Ollama refuses connections", down),
            ("not_installed", "request start to the cloud call when Ollama lacks the model", missing),
        ):
            median, p95 = ms(samples)
            rows.append(Row(name, what, "p95 < 50 ms", p95 < 50, median, p95, samples=len(samples)))
        over = await _stalled_generation(cloud, 2.0, 3)
        median, p95 = ms(over)
        rows.append(
            Row(
                "stall",
                "a model that never answers, first-token limit 2 s: generation start to the cloud call, "
                "past the limit",
                "within limit + 100 ms",
                max(over) <= 0.1,
                median,
                p95,
                samples=len(over),
            )
        )
    rows.append(await single_flight_row())
    return rows


async def single_flight_row(requests: int = 50, load_s: float = 1.0) -> Row:
    """Fifty concurrent requests for one unloaded model whose load takes a second."""
    models = default_models()
    with OllamaEmulator(models={MODEL: models[MODEL]}) as ollama, tempfile.TemporaryDirectory() as data:
        ollama.update_model(MODEL, load_delay=load_s)
        async with ModelRouter(config_for(ollama.url, Path(data))) as router:
            done: list[float] = []

            async def one(i: int) -> None:
                response = await router.generate("erd", f"ERD for shop {i}", thread_id=f"sf-{i}")
                assert response.ok and not response.is_fallback, response.error_message
                done.append(time.perf_counter())

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(requests)))
        loads = ollama.load_count(MODEL)
    spread = max(done) - min(done)
    total = max(done) - started
    return Row(
        "single_flight",
        f"{requests} concurrent requests for one unloaded model (load {load_s:g} s): last done after first",
        "exactly 1 load; all within 1.2 s of the first",
        loads == 1 and spread <= 1.2,
        median_ms=round(spread * 1000, 1),
        samples=requests,
        detail={"loads": loads, "all_done_after_s": round(total, 3)},
    )
