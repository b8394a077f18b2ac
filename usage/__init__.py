"""Per-request usage statistics stored in SQLite (``<data dir>/usage.db``).

The names below load on first use: `usage.errors` alone (what the CLI needs to report a
storage failure) must not pull in sqlite-utils.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "FALLBACK_REASONS": "config.vocabulary",
    "FallbackReason": "config.vocabulary",
    "UsageStoreError": "usage.errors",
    "MIGRATIONS": "usage.migrations",
    "Migration": "usage.migrations",
    "applied_migrations": "usage.migrations",
    "apply_migrations": "usage.migrations",
    "Location": "usage.row",
    "Status": "usage.row",
    "UsageRow": "usage.row",
    "now_iso": "usage.row",
    "DB_FILENAME": "usage.store",
    "ModelStats": "usage.store",
    "UsageStore": "usage.store",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'usage' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
