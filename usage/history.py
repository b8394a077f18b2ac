"""What the usage rows say about one local model: when it was last used, how long it takes to load."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from usage.migrations import REQUESTS_TABLE

LOAD_SAMPLES = 20  # the median of this model's latest measured loads
MIN_LOAD_S = 0.5  # shorter "loads" were a resident model answering: not a load time

# A model is spelled as the config names it ("mermaid-mistral") or as Ollama does
# ("mermaid-mistral:latest"); both spellings are asked for. Both queries use idx_requests_local_model.
LAST_USED_SQL = f"SELECT MAX(created_at) AS last FROM {REQUESTS_TABLE} WHERE local_model IN (?, ?)"
LOAD_TIMES_SQL = f"""
SELECT load_time_s FROM {REQUESTS_TABLE}
WHERE local_model IN (?, ?) AND load_time_s >= {MIN_LOAD_S}
ORDER BY id DESC LIMIT {LOAD_SAMPLES}
"""

REQUEST_COUNTS_SQL = f"""
SELECT local_model AS model, COUNT(*) AS requests FROM {REQUESTS_TABLE}
WHERE local_model IS NOT NULL AND local_model != '' GROUP BY local_model
"""


def spellings(model: str) -> tuple[str, str]:
    """The two names a model's rows may carry: with and without the implicit `:latest`."""
    if model.endswith(":latest"):
        return model, model.removesuffix(":latest")
    last = model.rsplit("/", 1)[-1]
    return (model, model) if ":" in last else (model, f"{model}:latest")


@dataclass(frozen=True)
class LoadTimes:
    """The measured loads of one model on this machine."""

    samples: int
    median_s: float | None


def last_used_epoch(value: object) -> float | None:
    """`created_at` (ISO-8601) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def load_times(values: list[object]) -> LoadTimes:
    """The median of the measured load times (seconds)."""
    seconds = [float(v) for v in values if isinstance(v, int | float)]
    return LoadTimes(len(seconds), statistics.median(seconds) if seconds else None)
