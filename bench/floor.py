"""The floor under `throughput` and `overhead_graph`: what LangGraph alone costs for our graph's shape.

Five nodes in a line (classify, ensure, generate, validate, finalize), each doing nothing but the
generate node, which streams one reply from the same emulator over aiohttp and orjson, as the
Ollama client does; the same checkpointer and stream settings as the router (one checkpoint at
exit, "updates").
No classification, no validation, no usage row: any router on LangGraph with this shape pays this.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import aiohttp
import orjson
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from bench.emulated import MODEL, PROMPT, ollama_process
from graph.checkpoint import close_checkpointer, open_sqlite_saver

NODES = ("classify", "ensure", "generate", "validate", "finalize")


class Rate(NamedTuple):
    """A throughput measurement: requests per second, and this process's CPU per request."""

    per_second: float
    cpu_ms: float


class _State(TypedDict, total=False):
    prompt: str
    reply: str
    step: int


def _graph(
    session: aiohttp.ClientSession, url: str, saver: Any, model: str = MODEL
) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def generate(state: _State) -> _State:
        body = {"model": model, "messages": [{"role": "user", "content": state["prompt"]}], "stream": True}
        parts = []
        async with session.post(f"{url}/api/chat", json=body) as resp:
            while line := await resp.content.readline():
                chunk = orjson.loads(line)
                parts.append(chunk.get("message", {}).get("content", ""))
        return {"reply": "".join(parts)}

    async def passing(state: _State) -> _State:
        return {"step": state.get("step", 0) + 1}

    builder = StateGraph(_State)
    for name in NODES:
        builder.add_node(name, generate if name == "generate" else passing)
    for first, then in zip((START, *NODES), (*NODES, END), strict=True):
        builder.add_edge(first, then)
    return builder.compile(checkpointer=saver)


async def _request(graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
    """One request on a new thread, streamed as ModelRouter streams it."""
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
    async for _ in graph.astream({"prompt": PROMPT}, config, stream_mode="updates", durability="exit"):
        pass


@contextlib.asynccontextmanager
async def bare_graph(url: str, model: str = MODEL) -> AsyncIterator[CompiledStateGraph[Any, Any, Any, Any]]:
    """The bare graph against the emulator at `url`, with a checkpoint file of its own."""
    with tempfile.TemporaryDirectory() as data:
        saver = await open_sqlite_saver(Path(data))
        try:
            async with aiohttp.ClientSession() as session:
                yield _graph(session, url, saver, model)
        finally:
            await close_checkpointer(saver)


async def floor_rate(graph: CompiledStateGraph[Any, Any, Any, Any], total: int, concurrency: int) -> Rate:
    """Requests/s of the bare graph at `concurrency`, and its CPU per request in this process."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await _request(graph)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Rate(total / wall, cpu / total * 1000)


async def floor_added(url: str, n: int, model: str, bare: Callable[[], Awaitable[None]]) -> float:
    """Median ms the bare graph adds over `bare` (a ChatOllama stream of `model`), interleaved."""
    async with bare_graph(url, model) as graph:
        diffs = []
        for i in range(20 + n):
            started = time.perf_counter()
            await bare()
            base = time.perf_counter() - started
            started = time.perf_counter()
            await _request(graph)
            if i >= 20:
                diffs.append(time.perf_counter() - started - base)
    return round(statistics.median(diffs) * 1000, 2)


async def _main() -> None:
    with ollama_process() as url:
        async with bare_graph(url) as graph:
            await floor_rate(graph, 50, 50)  # warm
            print(await floor_rate(graph, 300, 50))


if __name__ == "__main__":
    asyncio.run(_main())
