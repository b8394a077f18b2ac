"""A thread's checkpoint holds only what a later turn reads: it does not grow with the conversation."""

from __future__ import annotations

import sqlite3

from graph.router import ModelRouter
from tests.conftest import Rig


def _latest_checkpoint_bytes(rig: Rig, thread: str) -> int:
    with sqlite3.connect(rig.data_dir / "checkpoints.db") as conn:
        (size,) = conn.execute(
            "SELECT length(checkpoint) FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC LIMIT 1",
            (thread,),
        ).fetchone()
        (writes,) = conn.execute(
            "SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?", (thread,)
        ).fetchone()
    conn.close()
    return int(size) + int(writes)


async def test_checkpoint_size_stays_flat_over_many_turns(rig: Rig) -> None:
    sizes = []
    async with ModelRouter(rig.config()) as router:
        for turn in range(8):
            response = await rig.ask_with(router, f"ERD for a blog, revision {turn}", thread="long")
            assert response.ok, response
            sizes.append(_latest_checkpoint_bytes(rig, "long"))
    # Turn 2 onwards carries the same fields (the last artifact, the last task, this request's record);
    # an append-only list of turns would add ~1 kB per turn here.
    assert max(sizes[1:]) - min(sizes[1:]) < 200, sizes
