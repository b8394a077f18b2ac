"""Router overhead: a full graph request vs a bare ChatOllama call against the same server.

The Ollama emulator runs in its own process (so it does not share our GIL) and answers
instantly; what remains is each client's own cost. Runs are interleaved so that machine
noise hits every variant alike. Usage: uv run python -m bench.bench_router [-n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from langchain_ollama import ChatOllama

from config import load_config
from graph.router import ModelRouter
from providers.ollama import OllamaClient

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "ERD for a blog with users, posts and comments"
MODEL = "mermaid-mistral"


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.ollama", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.rsplit(" ", 1)[-1].strip()


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"{name:<34} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


async def main(n: int, warmup: int) -> None:
    proc, url = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as data:
            config = load_config(env={"OLLAMA_HOST": url, "MODELYARD_DATA_DIR": data})
            bare = ChatOllama(model=MODEL, base_url=url)
            client = OllamaClient(config.ollama)
            messages = [{"role": "user", "content": PROMPT}]

            async def chat_ollama() -> None:
                async for _ in bare.astream(PROMPT):
                    pass

            async def ollama_client() -> None:
                await client.generate(MODEL, messages, on_token=lambda _t: None)

            async with ModelRouter(config) as router:

                async def full_graph() -> None:
                    response = await router.generate("erd", PROMPT)
                    assert response.ok, response.error_message

                variants: dict[str, Callable[[], Awaitable[None]]] = {
                    "bare ChatOllama.astream (baseline)": chat_ollama,
                    "OllamaClient.generate": ollama_client,
                    "ModelRouter.generate (full graph)": full_graph,
                }
                samples: dict[str, list[float]] = {name: [] for name in variants}
                for i in range(warmup + n):
                    for name, run in variants.items():
                        started = time.perf_counter()
                        await run()
                        if i >= warmup:
                            samples[name].append(time.perf_counter() - started)
            await client.aclose()
    finally:
        proc.terminate()
        proc.wait()
    print(f"{n} requests each after {warmup} warm-up, interleaved; emulator in its own process")
    for name, values in samples.items():
        print(summary(name, values))
    base = statistics.median(samples["bare ChatOllama.astream (baseline)"])
    full = statistics.median(samples["ModelRouter.generate (full graph)"])
    print(f"router overhead over bare ChatOllama: {1000 * (full - base):+.2f} ms at the median")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.warmup))
