"""A pool of three Ollama hosts: which one serves each request, and what a hanging host costs.

gpu-1 has mermaid-mistral loaded, gpu-2 has it installed only, and "stuck" accepts connections and
never answers. Each emulator runs in-process on loopback; the requests go through the whole
graph. Usage: uv run python -m bench.bench_pool [-n 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from config import load_config
from config.schema import OllamaConfig, OllamaHost
from graph.router import ModelRouter
from lifecycle.health import FRESH_S
from nodes.response import ModelResponse
from providers.ollama import OllamaClient
from tests.emulators.hanging import HangingHost
from tests.emulators.ollama import OllamaEmulator

MODEL = "mermaid-mistral"
LIMITS = {"connect_timeout": 0.5, "inspect_timeout": 0.5}


async def ask(router: ModelRouter, prompt: str, thread: str) -> tuple[str, float]:
    """One request: the host that served it (from the status stream) and its seconds."""
    started = time.monotonic()
    host = "?"
    async for item in router.stream(prompt, task_type="erd", thread_id=thread, force_local=True):
        if isinstance(item, ModelResponse):
            assert item.ok, item.error_message
        elif item["kind"] == "status" and item["message"].startswith("Host: "):
            host = item["message"].removeprefix("Host: ")
    return host, time.monotonic() - started


async def main(n: int) -> None:
    with (
        OllamaEmulator() as one,
        OllamaEmulator() as two,
        HangingHost() as stuck,
        tempfile.TemporaryDirectory() as data,
    ):
        warm = OllamaClient(OllamaConfig(base_url=one.url))
        await warm.load_model(MODEL)
        await warm.aclose()
        base = load_config(env={"MODELYARD_DATA_DIR": data})
        hosts = (
            OllamaHost(url=one.url, name="gpu-1"),
            OllamaHost(url=two.url, name="gpu-2"),
            OllamaHost(url=stuck.url, name="stuck"),
        )
        config = base.model_copy(update={"ollama": base.ollama.model_copy(update={**LIMITS, "hosts": hosts})})
        async with ModelRouter(config) as router:
            print("sequential requests (stuck is marked down after the first):")
            times = []
            for i in range(n):
                host, took = await ask(router, f"ERD for shop {i}", f"seq-{i}")
                times.append(took)
                print(f"  {i + 1:2d}  {took * 1000:6.0f} ms  {host}")
            rest = statistics.median(times[1:]) * 1000
            print(f"first {times[0] * 1000:.0f} ms (cold start), median of the rest {rest:.0f} ms")
            # The stuck host's cool-down ends: the next request inspects it again, warm otherwise.
            await asyncio.to_thread(router.services.health.record_host_success, stuck.url)
            await asyncio.sleep(FRESH_S + 0.1)
            host, took = await ask(router, "ERD for a zoo", "again")
            print(f"stuck back in the pool for one request: {took * 1000:.0f} ms ({host.split(' (')[0]})")
            print(f"\n{n} concurrent requests:")
            served = await asyncio.gather(*(ask(router, f"ERD for farm {i}", f"par-{i}") for i in range(n)))
            for host, took in served:
                print(f"  {took * 1000:6.0f} ms  {host.split(' (')[0]}")
        chats = {
            name: sum(r.path == "/api/chat" for r in emu.requests)
            for name, emu in (("gpu-1", one), ("gpu-2", two))
        }
        print(f"\nchats per host: {chats}; connections the stuck host accepted: {stuck.accepted}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10)
    asyncio.run(main(parser.parse_args().n))
