"""The start-up error for an unusable MODELYARD_DATABASE_URL (no driver import: the CLI catches it)."""


class DatabaseUnavailableError(Exception):
    """PostgreSQL cannot be reached or refuses us; the message names host:port, never the password."""
