"""Chat history: Chainlit's SQLAlchemy data layer on SQLite in the data dir, and its local login.

With MODELYARD_DATABASE_URL the same data layer runs on PostgreSQL (ui/history_postgres.py).

Chainlit only lists and resumes threads of a logged-in user, so the app logs one fixed local
user in through a header callback (no login page). Its cookies are signed with a secret made
once per data dir (`chainlit-auth-secret`, mode 0600), never committed or configured by hand.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Chainlit is imported when the app builds its data layer, not with this module
    from chainlit.data.base import BaseDataLayer

CHAT_DB = "chat.db"
SECRET_FILE = "chainlit-auth-secret"
LOCAL_USER = "local"

# The tables SQLAlchemyDataLayer (chainlit 2.12, chainlit/data/sql_alchemy.py) reads and writes:
# the schema of https://docs.chainlit.io/data-layers/sqlalchemy, plus `autoCollapse`, which
# Step.to_dict sends since 2.x and the documented schema lacks (an unknown column makes every
# step write fail with only a logged warning). Column names are camelCase because the data
# layer's SQL spells them so. Append a migration to change them; never edit an applied one.
_V1 = (
    """CREATE TABLE users (
        "id" TEXT PRIMARY KEY,
        "identifier" TEXT NOT NULL UNIQUE,
        "metadata" TEXT NOT NULL,
        "createdAt" TEXT
    )""",
    """CREATE TABLE threads (
        "id" TEXT PRIMARY KEY,
        "createdAt" TEXT,
        "name" TEXT,
        "userId" TEXT,
        "userIdentifier" TEXT,
        "tags" TEXT,
        "metadata" TEXT,
        FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE
    )""",
    """CREATE TABLE steps (
        "id" TEXT PRIMARY KEY,
        "name" TEXT NOT NULL,
        "type" TEXT NOT NULL,
        "threadId" TEXT NOT NULL,
        "parentId" TEXT,
        "streaming" BOOLEAN NOT NULL,
        "waitForAnswer" BOOLEAN,
        "isError" BOOLEAN,
        "metadata" TEXT,
        "tags" TEXT,
        "input" TEXT,
        "output" TEXT,
        "createdAt" TEXT,
        "command" TEXT,
        "modes" TEXT,
        "start" TEXT,
        "end" TEXT,
        "generation" TEXT,
        "showInput" TEXT,
        "language" TEXT,
        "indent" INT,
        "defaultOpen" BOOLEAN,
        "autoCollapse" BOOLEAN,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
    )""",
    """CREATE TABLE elements (
        "id" TEXT PRIMARY KEY,
        "threadId" TEXT,
        "type" TEXT,
        "url" TEXT,
        "chainlitKey" TEXT,
        "name" TEXT NOT NULL,
        "display" TEXT,
        "objectKey" TEXT,
        "size" TEXT,
        "page" INT,
        "language" TEXT,
        "forId" TEXT,
        "mime" TEXT,
        "props" TEXT,
        "autoPlay" BOOLEAN,
        "playerConfig" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
    )""",
    """CREATE TABLE feedbacks (
        "id" TEXT PRIMARY KEY,
        "forId" TEXT NOT NULL,
        "threadId" TEXT NOT NULL,
        "value" INT NOT NULL,
        "comment" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE
    )""",
    'CREATE INDEX idx_steps_thread ON steps ("threadId")',
    'CREATE INDEX idx_threads_user ON threads ("userId")',
)

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (("chainlit_2_12_tables", _V1),)


class HistoryError(Exception):
    """The chat database cannot be used; the message names the file."""


def migrate(path: Path) -> list[int]:
    """Create or upgrade the chat tables in `path`; return the migration numbers applied now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        # WAL: the UI's writes never block a reader such as a second tab's thread list.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = _apply(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return applied
    except sqlite3.Error as exc:
        raise HistoryError(f"{path}: cannot prepare the chat history database ({exc})") from exc
    finally:
        conn.close()


def _apply(conn: sqlite3.Connection) -> list[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)"
    )
    done = {int(row[0]) for row in conn.execute("SELECT id FROM _migrations")}
    unknown = sorted(done - set(range(1, len(MIGRATIONS) + 1)))
    if unknown:
        raise HistoryError(f"chat database has migrations {unknown} this version does not know")
    applied = []
    for number, (name, statements) in enumerate(MIGRATIONS, start=1):
        if number in done:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
            (number, name, datetime.now(UTC).isoformat()),
        )
        applied.append(number)
    return applied


def conninfo(path: Path) -> str:
    """The SQLAlchemy URL of the chat database (async driver)."""
    return f"sqlite+aiosqlite:///{path}"


# What SQLAlchemyDataLayer.get_thread leaves out of each step although the page draws with it:
# whether the step is open (all of a request's steps are; without it each shows as a closed
# header) and a message's command (a command sent without text would come back an empty bubble).
_STEP_EXTRAS_SQL = (
    'SELECT "id", "defaultOpen", "autoCollapse", "command" FROM steps WHERE "threadId" = :thread_id'
)


def data_layer(path: Path) -> BaseDataLayer:
    """Chainlit's SQLAlchemy data layer on the chat database `path` (already migrated)."""
    return data_layer_at(conninfo(path))


def data_layer_at(url: str) -> BaseDataLayer:
    """The data layer on the SQLAlchemy URL `url`: a SQLite file's, or PostgreSQL's (asyncpg)."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
    from chainlit.types import ThreadDict

    class ChatDataLayer(SQLAlchemyDataLayer):
        async def get_thread(self, thread_id: str) -> ThreadDict | None:
            thread = await super().get_thread(thread_id)
            if thread is None:
                return None
            rows = await self.execute_sql(_STEP_EXTRAS_SQL, {"thread_id": thread_id})
            extras = {row["id"]: row for row in rows} if isinstance(rows, list) else {}
            for step in thread["steps"]:
                row = extras.get(step["id"])
                if row is None:
                    continue
                if row["defaultOpen"] is not None:
                    step["defaultOpen"] = bool(row["defaultOpen"])
                if row["autoCollapse"] is not None:
                    step["autoCollapse"] = bool(row["autoCollapse"])
                if row["command"]:
                    step["command"] = row["command"]
            return thread

    return ChatDataLayer(conninfo=url)


def auth_secret(data_dir: Path) -> str:
    """The data dir's cookie-signing secret, created on first use and readable by its owner only."""
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Written in full under a private name, then linked into place: a second process starting at
    # the same moment either wins the link or reads a complete file, never a half-written one.
    temp = data_dir / f".{SECRET_FILE}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    try:
        os.link(temp, path)
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
    finally:
        temp.unlink()
    return value
