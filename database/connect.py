"""Open PostgreSQL connections; turn a driver failure into one actionable, password-free line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.database_url import ENV_VAR, DatabaseUrl
from config.redaction import redact
from database.errors import DatabaseUnavailableError

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

CONNECT_TIMEOUT_S = 5  # an unreachable host fails start-up in seconds, not at the OS's TCP timeout
# Each hint answers a driver message, checked in order; the last one fits anything else.
_HINTS = (
    ("password authentication failed", "check the user name and password in the URL"),
    ("does not exist", "create the role or database first (createuser, createdb)"),
    ("timeout", "is the server up, and does a firewall let this machine reach it?"),
    ("refused", "is PostgreSQL running there and listening on that port?"),
    ("", "check that PostgreSQL runs there and accepts this user"),
)


def unavailable(url: DatabaseUrl, exc: BaseException) -> DatabaseUnavailableError:
    """The driver's failure, scrubbed of the URL and password, with what to check."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    reason = redact(reason, (url.raw, url.password)).replace(url.raw, "[redacted]")
    hint = next(h for key, h in _HINTS if key in reason.lower())
    return DatabaseUnavailableError(f"{ENV_VAR}: cannot use PostgreSQL at {url.display()} ({reason}); {hint}")


def connect_kwargs() -> dict[str, Any]:
    """Connection options shared by every psycopg connection we open."""
    return {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "modelyard"}


def connect(url: DatabaseUrl, *, autocommit: bool = True) -> psycopg.Connection[DictRow]:
    """A blocking connection whose rows are dicts; DatabaseUnavailableError if it cannot be opened."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        return psycopg.connect(url.raw, autocommit=autocommit, row_factory=dict_row, **connect_kwargs())
    except psycopg.Error as exc:
        raise unavailable(url, exc) from None


async def connect_async(url: DatabaseUrl) -> psycopg.AsyncConnection[DictRow]:
    """An autocommit async connection (rows as dicts); DatabaseUnavailableError if it cannot be opened."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        return await psycopg.AsyncConnection.connect(
            url.raw, autocommit=True, row_factory=dict_row, **connect_kwargs()
        )
    except psycopg.Error as exc:
        raise unavailable(url, exc) from None
