"""Open the usage store the config asks for: ``usage.db`` in the data dir, or PostgreSQL by URL."""

from __future__ import annotations

from config.database_url import database_url, secret_values
from config.schema import AppConfig
from usage.store import UsageStore


def open_usage_store(config: AppConfig) -> UsageStore:
    """The store for `config`; a PostgreSQL URL opens (and migrates) the shared table there.

    Raises DatabaseUnavailableError when the server cannot be reached or refuses us, and
    UsageStoreError when the database cannot hold the table.
    """
    url = database_url(config)
    if url is None:
        return UsageStore.in_data_dir(config.data_dir, secrets=config.secrets.secret_values())
    from usage.postgres_backend import PostgresBackend  # psycopg loads only for PostgreSQL

    return UsageStore.on(PostgresBackend(url), secrets=secret_values(config))
