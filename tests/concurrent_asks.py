"""`python -m tests.concurrent_asks N PREFIX`: one app process sending N requests at once.

What a chat app under load does, without a browser: one ModelRouter (the environment's config,
MODELYARD_DATABASE_URL included), N requests in flight together, each on its own thread. Prints
how many were answered.
"""

from __future__ import annotations

import asyncio
import sys

from graph.router import ModelRouter


async def main(n: int, prefix: str) -> int:
    async with ModelRouter() as router:
        answers = await asyncio.gather(
            *(router.generate("erd", f"ERD for shop {i}", thread_id=f"{prefix}-{i}") for i in range(n))
        )
    for answer in answers:  # what went wrong, for the test's failure message
        if not answer.content:
            print(f"{answer.thread_id}: {answer.fallback_reason}: {answer.error_message}", file=sys.stderr)
    return sum(1 for answer in answers if answer.content)


if __name__ == "__main__":
    print(asyncio.run(main(int(sys.argv[1]), sys.argv[2])))
