"""Per-request usage statistics stored in SQLite (``<data dir>/usage.db``)."""

from config.vocabulary import FALLBACK_REASONS, FallbackReason
from usage.errors import UsageStoreError
from usage.migrations import MIGRATIONS, Migration, applied_migrations, apply_migrations
from usage.row import Location, Status, UsageRow, now_iso
from usage.store import DB_FILENAME, ModelStats, UsageStore

__all__ = [
    "DB_FILENAME",
    "FALLBACK_REASONS",
    "MIGRATIONS",
    "FallbackReason",
    "Location",
    "Migration",
    "ModelStats",
    "Status",
    "UsageRow",
    "UsageStore",
    "UsageStoreError",
    "applied_migrations",
    "apply_migrations",
    "now_iso",
]
