"""MODELYARD_DATABASE_URL: which database holds checkpoints, usage and chats, and how to name it safely.

Unset means the embedded SQLite files in the data directory. Set, it must name PostgreSQL. The
password is only ever handed to the driver: every message uses `display()` (no password), and
`secret_values()` lets redaction scrub it from anything stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from config.schema import AppConfig

ENV_VAR = "MODELYARD_DATABASE_URL"
SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432


class DatabaseUrlError(ValueError):
    """The URL is not one modelyard can use; the message never contains its password."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed PostgreSQL URL (`raw` holds the password: hand it to the driver only)."""

    raw: str
    host: str
    port: int
    database: str
    user: str
    password: str

    def display(self) -> str:
        """`host:port/database`: what an error or a log line may say."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.database}"

    def sqlalchemy(self, driver: str) -> str:
        """The same URL for SQLAlchemy's `postgresql+<driver>` dialect."""
        return f"postgresql+{driver}://{self.raw.split('://', 1)[1]}"


def parse_database_url(value: str) -> DatabaseUrl:
    """Check that `value` names a PostgreSQL database; DatabaseUrlError (password-free) otherwise."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise DatabaseUrlError(
            f"{ENV_VAR}: not a URL; expected postgresql://user:password@host:port/database"
        ) from None
    if parts.scheme not in SCHEMES:
        raise DatabaseUrlError(
            f"{ENV_VAR}: scheme {parts.scheme or '(none)'!r} is not supported; expected "
            "postgresql://user:password@host:port/database (unset it to keep the SQLite files)"
        )
    host, database = parts.hostname or "", unquote(parts.path.lstrip("/"))
    if not host or not database:
        raise DatabaseUrlError(
            f"{ENV_VAR}: needs a host and a database name, e.g. postgresql://user:password@host:5432/modelyard"
        )
    return DatabaseUrl(
        raw=value.strip(),
        host=host,
        port=port,
        database=database,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def database_url(config: AppConfig) -> DatabaseUrl | None:
    """The config's PostgreSQL URL, parsed; None for the SQLite files."""
    return parse_database_url(config.database_url) if config.database_url else None


def secret_values(config: AppConfig) -> tuple[str, ...]:
    """Every secret to redact: the cloud keys, and the database URL and its password."""
    cloud = config.secrets.secret_values()
    url = database_url(config)
    if url is None:
        return cloud
    return (*cloud, url.raw, *(p for p in {url.password, _quoted_password(url.raw)} if p))


def _quoted_password(raw: str) -> str:
    # As spelled in the URL (percent-encoded), which is how a driver's message would quote it.
    return urlsplit(raw).password or ""
