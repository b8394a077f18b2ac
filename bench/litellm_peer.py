"""LiteLLM's Router as a peer, for scale: `uv run --isolated --no-project --with litellm==VERSION
python bench/litellm_peer.py URL CLOUD_URL N` streams N replies from the Ollama emulator at URL
through a Router that has one cloud fallback configured, and prints the seconds of each as JSON.

Run in its own throwaway environment (LiteLLM is not one of modelyard's dependencies), against
the same emulator process as the rest of the run. Only LiteLLM and the standard library here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from litellm import Router

PROMPT = "ERD for a blog with users, posts and comments"


async def main(url: str, cloud: str, n: int, warmup: int = 20) -> list[float]:
    router = Router(
        model_list=[
            {
                "model_name": "local",
                "litellm_params": {"model": "ollama_chat/mermaid-mistral", "api_base": url},
            },
            {
                "model_name": "cloud",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": cloud, "api_key": "sk-peer"},
            },
        ],
        fallbacks=[{"local": ["cloud"]}],
        num_retries=0,
    )
    samples = []
    for i in range(warmup + n):
        started = time.perf_counter()
        stream = await router.acompletion(
            model="local", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        async for _ in stream:
            pass
        if i >= warmup:
            samples.append(time.perf_counter() - started)
    return samples


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
