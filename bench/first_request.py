"""`python -m bench.first_request URL DATA_DIR`: a fresh process opens the router as the chat app
does (Mermaid checker started at once), and prints the seconds its first request takes."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bench.emulated import PROMPT, config_for
from graph.router import ModelRouter

READY_WAIT_S = 30.0


async def main(url: str, data_dir: Path) -> float:
    async with ModelRouter(config_for(url, data_dir)) as router:
        validators = router.services.validators
        validators.prepare("mermaid")  # what ui/app.py does at start-up
        deadline = time.monotonic() + READY_WAIT_S
        while not validators.ready("mermaid") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the user is still reading the page
        started = time.perf_counter()
        response = await router.generate("erd", PROMPT)
        took = time.perf_counter() - started
        assert response.ok, response.error_message
    return took


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], Path(sys.argv[2]))))
