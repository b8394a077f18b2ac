"""Chat history on PostgreSQL (MODELYARD_DATABASE_URL): Chainlit's tables, made by our migrations.

The schema of https://docs.chainlit.io/data-layers/sqlalchemy for PostgreSQL (metadata, generation
and props JSONB, tags TEXT[]; Chainlit 2.12's SQLAlchemyDataLayer binds JSON as text and tags as a
list), plus the columns ui/history.py's SQLite tables have beyond it: `autoCollapse` (sent by
Step.to_dict; an unknown column makes every step write fail with only a logged warning), and
`modes`, `autoPlay`, `playerConfig`. Ids are TEXT rather than the documented UUID: the data layer
compares them with text parameters, and TEXT takes every id the SQLite tables take.

Recorded in `_chat_migrations` (the usage table's steps are in `_migrations` of the same
database), under an advisory lock of their own, so app processes starting together are safe.
Append a migration to change the tables; never edit an applied one.
"""

from __future__ import annotations

from config.database_url import DatabaseUrl
from database.connect import connect
from database.migrate import SqlMigration, UnknownMigrationsError, apply_locked

MIGRATIONS_TABLE = "_chat_migrations"
LOCK_KEY = 0x6D79_4348  # "myCH"

_V1 = (
    """CREATE TABLE users (
        "id" TEXT PRIMARY KEY,
        "identifier" TEXT NOT NULL UNIQUE,
        "metadata" JSONB NOT NULL,
        "createdAt" TEXT
    )""",
    """CREATE TABLE threads (
        "id" TEXT PRIMARY KEY,
        "createdAt" TEXT,
        "name" TEXT,
        "userId" TEXT,
        "userIdentifier" TEXT,
        "tags" TEXT[],
        "metadata" JSONB,
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
        "metadata" JSONB,
        "tags" TEXT[],
        "input" TEXT,
        "output" TEXT,
        "createdAt" TEXT,
        "command" TEXT,
        "modes" JSONB,
        "start" TEXT,
        "end" TEXT,
        "generation" JSONB,
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
        "props" JSONB,
        "autoPlay" BOOLEAN,
        "playerConfig" JSONB,
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

MIGRATIONS: tuple[SqlMigration, ...] = (SqlMigration(1, "chainlit_2_12_tables", _V1),)


class ChatHistoryError(Exception):
    """The chat tables cannot be prepared; the message names the server, never the password."""


def migrate(url: DatabaseUrl) -> list[int]:
    """Create or upgrade the chat tables; return the migration numbers applied now.

    Raises DatabaseUnavailableError when the server cannot be reached.
    """
    import psycopg

    conn = connect(url, autocommit=True)
    try:
        return apply_locked(conn, MIGRATIONS, table=MIGRATIONS_TABLE, lock_key=LOCK_KEY)
    except (UnknownMigrationsError, psycopg.Error) as exc:
        raise ChatHistoryError(
            f"PostgreSQL at {url.display()}: cannot prepare the chat history tables ({exc})"
        ) from exc
    finally:
        conn.close()


def conninfo(url: DatabaseUrl) -> str:
    """The SQLAlchemy URL of the chat tables (async driver: asyncpg)."""
    return url.sqlalchemy("asyncpg")
