"""The router's own promises (issue 8): a finished artifact survives a locked checkpoint database,
each router keeps its own services, nothing stored or logged carries a key, bad prompts write nothing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from graph import BadPromptError
from graph.router import ModelRouter
from graph.storage import flat
from services import Context, Services, services_for
from services.registry import close_lazy_services
from tests.conftest import MERMAID, OPENAI_KEY, Rig, locked_briefly
from validators import Validators

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another process's writer holding the database (a second, independent connection)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


async def test_a_locked_checkpoint_database_keeps_the_artifact_and_says_the_thread_was_not_saved(
    rig: Rig,
) -> None:
    async with ModelRouter(rig.config(), checkpoint_busy_timeout=0.2) as router:
        first = await rig.ask_with(router, "ERD for a blog", thread="t-saved")
        with exclusive_lock(rig.data_dir / "checkpoints.db"):
            locked = await rig.ask_with(router, "ERD for a shop", thread="t-locked")
        after = await rig.ask_with(router, "ERD for a zoo", thread="t-after")
    assert first.ok and first.warning is None
    assert locked.ok and locked.content.startswith("erDiagram") and locked.error_message is None
    assert locked.warning is not None
    assert "thread t-locked) was not saved" in locked.warning and "database is locked" in locked.warning
    assert after.ok and after.warning is None
    rows = rig.usage_rows()
    assert [(r["thread_id"], r["status"]) for r in rows] == [
        ("t-saved", "success"),
        ("t-locked", "success"),
        ("t-after", "success"),
    ]
    assert rig.checkpoint_count("t-locked") == 0 and rig.checkpoint_count("t-saved") >= 1


async def test_a_briefly_locked_checkpoint_database_is_waited_for_off_the_event_loop(rig: Rig) -> None:
    # Checkpoint statements run on the loop (graph/checkpoint_sqlite.py); one that finds another
    # process's lock waits in a thread, so the app's other requests and pages go on meanwhile.
    async with ModelRouter(rig.config(), checkpoint_busy_timeout=5.0) as router:
        assert (await rig.ask_with(router, "ERD for a blog", thread="t-first")).ok
        async with locked_briefly(rig.data_dir / "checkpoints.db", 0.6) as gaps:
            started = time.monotonic()
            waited = await rig.ask_with(router, "ERD for a shop", thread="t-waited")
            took = time.monotonic() - started
    assert waited.ok and waited.warning is None, waited.warning
    assert took >= 0.5  # it did wait for the lock...
    assert gaps and max(gaps) < 0.25, gaps  # ...and the loop kept running all along
    assert rig.checkpoint_count("t-waited") >= 1


async def test_a_caller_that_stops_reading_cancels_the_run_and_the_router_goes_on(rig: Rig) -> None:
    # ModelRouter.stream runs the graph in a task of its own: closing the stream must end it.
    rig.ollama.update_model(MERMAID, token_delay=0.2)
    async with ModelRouter(rig.config()) as router:
        stream = router.stream("ERD for a blog", task_type="erd", thread_id="t-stopped")
        async for item in stream:
            if isinstance(item, dict) and item["kind"] == "token":
                break
        await stream.aclose()
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "modelyard-graph"]
        rig.ollama.update_model(MERMAID, token_delay=0.0)
        after = await rig.ask_with(router, "ERD for a zoo", thread="t-after")
    assert after.ok, after.error_message
    statuses = {r["thread_id"]: r["status"] for r in rig.usage_rows()}
    assert statuses == {"t-stopped": "interrupted", "t-after": "success"}


async def test_two_routers_with_the_same_config_use_and_close_only_their_own_services(rig: Rig) -> None:
    config = rig.config()
    first, second = ModelRouter(config), ModelRouter(config)
    await first.open()
    await second.open()
    try:
        # Each router's runs reach its own services, however many share the config.
        assert await services_for(first.context) is first.services
        assert await services_for(second.context) is second.services
        assert (await rig.ask_with(first, "ERD one")).ok
        await second.aclose()  # closes the second's services only
        assert await services_for(first.context) is first.services
        response = await rig.ask_with(first, "ERD two")
        assert response.ok, response.error_message
        assert first.services.usage.count() == 2
    finally:
        await first.aclose()
    with pytest.raises(RuntimeError, match="ModelRouter is closed"):
        await services_for(first.context)  # never a stand-in that nobody would close


async def test_services_built_lazily_for_studio_are_closed(tmp_path: Path, rig: Rig) -> None:
    context = Context(data_dir=str(tmp_path / "studio"))
    services = await services_for(context)
    assert await services_for(context) is services
    assert close_lazy_services() == 1
    with pytest.raises(Exception, match="closed"):
        services.usage.count()
    assert await services_for(context) is not services  # a later run builds afresh
    close_lazy_services()


def test_services_built_lazily_are_closed_at_process_exit(tmp_path: Path) -> None:
    script = (
        "import asyncio, logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
        "from services import Context, services_for\n"
        f"asyncio.run(services_for(Context(data_dir={str(tmp_path)!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert "closed 1 lazily built services" in result.stderr


async def test_a_crash_quoting_a_key_is_scrubbed_from_response_usage_row_and_log(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    class LeakyValidators(Validators):
        async def check(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            raise RuntimeError(f"request failed with Authorization: Bearer {OPENAI_KEY}")

    config = rig.config()
    services = Services.create(config)
    await services.validators.aclose()
    services.validators = LeakyValidators()
    try:
        async with ModelRouter(config, services=services) as router:
            response = await rig.ask_with(router, "ERD for a blog", thread="t-leak")
    finally:
        await services.aclose()
    assert response.error_message is not None and "[redacted]" in response.error_message
    assert OPENAI_KEY[: len(OPENAI_KEY) // 2] not in response.error_message
    (row,) = rig.usage_rows()
    assert row["status"] == "failed" and row["task_type"] == "erd" and row["local_model"] == MERMAID
    assert "[redacted]" in row["error_message"]
    for path in rig.data_dir.glob("usage.db*"):
        assert OPENAI_KEY[: len(OPENAI_KEY) // 2].encode() not in path.read_bytes(), path
    assert "Bearer [redacted]" in caplog.text  # the traceback still reaches the log, scrubbed
    assert OPENAI_KEY[: len(OPENAI_KEY) // 2] not in caplog.text


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("   ", "the prompt is empty"),
        ("x" * 2000, "over the limit of 1,000 bytes"),
        ("ERD\x00for a blog", "control character"),
    ],
)
async def test_a_refused_prompt_writes_no_row_and_no_checkpoint(rig: Rig, prompt: str, message: str) -> None:
    config = rig.config()
    config = config.model_copy(
        update={"routing": config.routing.model_copy(update={"max_prompt_bytes": 1000})}
    )
    async with ModelRouter(config) as router:
        assert (await rig.ask_with(router, "ERD for a blog", thread="t-earlier")).ok
        with pytest.raises(BadPromptError, match=message):
            await rig.ask_with(router, prompt, thread="t-earlier")
        with pytest.raises(BadPromptError, match=message):
            await rig.ask_with(router, prompt, thread="t-new")
        state = flat((await router.graph.aget_state({"configurable": {"thread_id": "t-earlier"}})).values)
    assert len(rig.usage_rows()) == 1
    assert rig.checkpoint_count("t-new") == 0
    assert state["response"]["ok"] if "ok" in state["response"] else state["response"]["valid"]
    assert state["prompt"] == "ERD for a blog"


async def test_closing_one_router_leaves_the_next_ones_cloud_client_working(rig: Rig) -> None:
    """langchain-openai caches one connection pool per (base_url, timeout) for the whole process:
    closing a router closed it under every later router with the same endpoint."""
    config = rig.config(ollama_up=False)
    first = await rig.ask(config, "ERD for a blog", thread="t-first")
    second = await rig.ask(config, "ERD for a shop", thread="t-second")  # a new router, same endpoint
    assert first.ok and first.is_fallback, first
    assert second.ok and second.is_fallback, second
