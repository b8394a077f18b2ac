"""The chat history on a real PostgreSQL: our migrations, then Chainlit's data layer on asyncpg."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest

from config.database_url import parse_database_url
from database.errors import DatabaseUnavailableError
from tests.postgres import PASSWORD, PostgresServer
from ui import history, history_postgres


def test_tables_are_created_once_even_by_concurrent_starts(pg_url: str) -> None:
    url = parse_database_url(pg_url)
    gate = threading.Barrier(4)
    applied: list[list[int]] = []

    def start() -> None:
        gate.wait()
        applied.append(history_postgres.migrate(url))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(applied) == [[], [], [], [1]]
    with psycopg.connect(pg_url) as conn:
        recorded = conn.execute(b"SELECT id, name FROM _chat_migrations").fetchall()
        columns = {
            name: kind
            for name, kind in conn.execute(
                b"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'steps'"
            )
        }
    assert recorded == [(1, "chainlit_2_12_tables")]
    assert (
        columns["metadata"] == "jsonb" and columns["tags"] == "ARRAY" and columns["autoCollapse"] == "boolean"
    )
    # Every column the SQLite tables have, so a step Chainlit writes fits either engine.
    assert set(columns) == _sqlite_columns("steps")


def _sqlite_columns(table: str) -> set[str]:
    import sqlite3
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.db"
        history.migrate(path)
        conn = sqlite3.connect(path)
        try:
            return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        finally:
            conn.close()


# Chainlit's import pulls in traceloop, whose pydantic models warn (the suite turns warnings into errors).
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_data_layer_writes_and_reads_a_thread_with_steps(pg_url: str) -> None:
    from chainlit.context import init_http_context
    from chainlit.user import User

    url = parse_database_url(pg_url)
    history_postgres.migrate(url)
    layer: Any = history.data_layer_at(history_postgres.conninfo(url))
    init_http_context()  # an HTTP session: the data layer writes at once (no first-message queue)
    user = await layer.create_user(User(identifier=history.LOCAL_USER, metadata={"provider": "local"}))
    assert user is not None
    thread_id = "3f1c6a2e-0000-4000-8000-000000000001"
    await layer.update_thread(
        thread_id,
        name="ERD for a blog",
        user_id=user.id,
        metadata={"chat_settings": {"force_local": True}},
        tags=["erd"],
    )
    steps = [
        {
            "id": "s-1",
            "threadId": thread_id,
            "name": "user",
            "type": "user_message",
            "output": "ERD for a blog",
            "createdAt": "2030-01-01T00:00:00Z",
            "streaming": False,
            "command": "usage",
        },
        {
            "id": "s-2",
            "threadId": thread_id,
            "parentId": "s-1",
            "name": "classify_task",
            "type": "tool",
            "output": "Task: erd",
            "createdAt": "2030-01-01T00:00:01Z",
            "streaming": False,
            "defaultOpen": True,
            "autoCollapse": False,
            "metadata": {"node": "classify_task"},
            "tags": ["graph"],
        },
        {
            "id": "s-3",
            "threadId": thread_id,
            "name": "modelyard",
            "type": "assistant_message",
            "output": "erDiagram\n  USER ||--o{ POST : writes",
            "createdAt": "2030-01-01T00:00:02Z",
            "streaming": False,
        },
    ]
    for step in steps:
        await layer.create_step(step)
    thread = await layer.get_thread(thread_id)
    assert thread is not None and thread["name"] == "ERD for a blog"
    got = {step["id"]: step for step in thread["steps"]}
    assert list(got) == ["s-1", "s-2", "s-3"]
    assert got["s-3"]["output"].startswith("erDiagram")
    assert got["s-2"]["defaultOpen"] is True and got["s-2"]["autoCollapse"] is False
    assert got["s-1"]["command"] == "usage"
    listed = await layer.list_threads(_pagination(), _filters(user.id))
    assert [t["id"] for t in listed.data] == [thread_id]
    assert await layer.get_thread_author(thread_id) == history.LOCAL_USER
    await layer.engine.dispose()
    with psycopg.connect(pg_url) as conn:
        (metadata,) = conn.execute(b'SELECT "metadata" FROM threads').fetchone() or (None,)
    assert metadata["chat_settings"] == {"force_local": True}  # stored as JSONB, not a string


def _pagination() -> Any:
    from chainlit.types import Pagination

    return Pagination(first=20)


def _filters(user_id: str) -> Any:
    from chainlit.types import ThreadFilter

    return ThreadFilter(userId=user_id)


def test_an_unreachable_server_is_one_clear_error(postgres: PostgresServer) -> None:
    url = parse_database_url(postgres.url("postgres", password="wrong-password-0123456789"))
    with pytest.raises(DatabaseUnavailableError) as caught:
        history_postgres.migrate(url)
    assert f"127.0.0.1:{postgres.port}" in str(caught.value) and "wrong-password" not in str(caught.value)
    assert PASSWORD[:8] not in str(caught.value)
    asyncio.run(asyncio.sleep(0))  # (no loop left behind)
