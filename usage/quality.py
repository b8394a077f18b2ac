"""Quality feedback: how often a local model's artifacts pass validation, per task type.

A *pair* is one local model and one task type. Its rows are the ``requests`` rows whose
``local_model`` is that model (rows without one tried no local model and count for none) and
whose ``task_type`` is that task, **interrupted rows excluded**: such a row has no outcome yet,
either because the process died or because the request is still running (the request asking
``low_quality`` is one of them).

Over a pair's rows (``QualityStats.overall``):

* ``requests``: the pair's rows.
* ``judged``: those whose reply a validator judged: ``local_outcome`` valid, repaired or invalid.
  ``failed`` (no reply: load error, timeout, server down) says nothing of the model's output and
  ``unchecked`` (no parser for it) was never judged: neither counts for or against.
* pass rate = (``valid`` + ``repaired``) / ``judged``.
* repair rate = ``repaired`` / ``requests``.
* fallback rate = rows with ``cloud_attempts > 0`` (a cloud model was called, whether or not
  it answered) / ``requests``.

Over the last ``window`` (``QualityStats.recent``): the pair's last ``window`` *judged* rows,
newest first by id (the order requests started in): the last N times the local model's answer
to that task was judged. There ``requests == judged``, so all three rates share that denominator.
Every rate is a fraction in [0, 1], or None when its denominator is 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from config.schema import QualityConfig
from usage.migrations import REQUESTS_TABLE

DEFAULT_WINDOW = QualityConfig().window

# Conditions, counted as SUM(CASE WHEN ... THEN 1 ELSE 0 END): valid SQL on SQLite and PostgreSQL
# alike (PostgreSQL has no SUM(boolean)). A NULL local_outcome matches none of them.
_JUDGED = "local_outcome IN ('valid', 'repaired', 'invalid')"
_PASSED = "local_outcome IN ('valid', 'repaired')"
_REPAIRED = "local_outcome = 'repaired'"
_FELL_BACK = "COALESCE(cloud_attempts, 0) > 0"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# Every pair's overall counts in one scan; each pair's window is then PAIR_WINDOW_SQL, the very
# query low_quality runs, so the table's "last N" and the request path's warning always agree
# (and it is 3x faster than one ROW_NUMBER() query over every row).
OVERALL_SQL = f"""
SELECT
    local_model AS model,
    task_type,
    COUNT(*) AS requests,
    {_count(_JUDGED)} AS judged,
    {_count(_PASSED)} AS passed,
    {_count(_REPAIRED)} AS repaired,
    {_count(_FELL_BACK)} AS fallbacks
FROM {REQUESTS_TABLE}
WHERE local_model IS NOT NULL AND local_model != '' AND status != 'interrupted'
GROUP BY local_model, task_type
ORDER BY requests DESC, model, task_type
"""

# One pair's window, on the request path: idx_requests_local_model holds (local_model, id), so
# SQLite walks that model's rows newest first and stops after :window matches, no sort (0.05 ms
# at 10,000 rows). A pair with fewer than :window judged rows walks all of its model's rows
# (2 ms at 10,000): an index on (local_model, task_type) would bound that too, if it ever matters.
PAIR_WINDOW_SQL = f"""
SELECT
    COUNT(*) AS requests,
    COALESCE({_count(_PASSED)}, 0) AS passed,
    COALESCE({_count(_REPAIRED)}, 0) AS repaired,
    COALESCE({_count(_FELL_BACK)}, 0) AS fallbacks
FROM (
    SELECT local_outcome, cloud_attempts
    FROM {REQUESTS_TABLE}
    WHERE local_model = :model AND task_type = :task_type
        AND status != 'interrupted' AND {_JUDGED}
    ORDER BY id DESC
    LIMIT :window
) AS pair_window
"""


class Query(Protocol):
    """``UsageStore._query``: run SQL under the store's lock, rows as dicts."""

    def __call__(self, sql: str, params: dict[str, object]) -> list[dict[str, Any]]:
        """Rows of ``sql`` with named ``params``."""
        ...


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class QualityCounts:
    """Counts over a set of a pair's rows; the rates are defined in the module docstring."""

    requests: int
    judged: int
    passed: int
    repaired: int
    fallbacks: int

    @property
    def pass_rate(self) -> float | None:
        """Valid or repaired requests / judged requests."""
        return _rate(self.passed, self.judged)

    @property
    def repair_rate(self) -> float | None:
        """Repaired requests / requests."""
        return _rate(self.repaired, self.requests)

    @property
    def fallback_rate(self) -> float | None:
        """Requests that called a cloud model / requests."""
        return _rate(self.fallbacks, self.requests)

    def to_dict(self) -> dict[str, object]:
        """The counts and the rates, JSON-serialisable."""
        return asdict(self) | {
            "pass_rate": self.pass_rate,
            "repair_rate": self.repair_rate,
            "fallback_rate": self.fallback_rate,
        }


@dataclass(frozen=True)
class QualityWarning:
    """A pair whose pass rate over its last ``window`` judged requests is under ``threshold``."""

    model: str
    task_type: str
    pass_rate: float
    passed: int
    requests: int  # the judged requests in the window (<= window): the pass rate's denominator
    window: int
    threshold: float

    @property
    def message(self) -> str:
        """E.g. "mermaid-mistral passed validation on 9 of the last 20 mermaid requests (45%, under 70%)"."""
        # Rounded down: "70%, under 70%" would read as a bug.
        rate = math.floor(100 * self.pass_rate + 1e-9)
        threshold = f"{round(100 * self.threshold, 4):g}%"
        return (
            f"{self.model} passed validation on {self.passed} of the last {self.requests} "
            f"{self.task_type} requests ({rate}%, under {threshold})"
        )

    def to_dict(self) -> dict[str, object]:
        """The fields and the message, JSON-serialisable."""
        return asdict(self) | {"message": self.message}


def check(model: str, task_type: str, recent: QualityCounts, config: QualityConfig) -> QualityWarning | None:
    """A warning when ``recent`` (a pair's window) has enough judged requests and too few passed."""
    rate = recent.pass_rate
    if rate is None or recent.judged < config.min_requests or rate >= config.min_pass_rate:
        return None
    return QualityWarning(
        model=model,
        task_type=task_type,
        pass_rate=rate,
        passed=recent.passed,
        requests=recent.judged,
        window=config.window,
        threshold=config.min_pass_rate,
    )


@dataclass(frozen=True)
class QualityStats:
    """One pair over all its rows (``overall``) and over its last ``window`` judged rows (``recent``)."""

    model: str
    task_type: str
    window: int
    overall: QualityCounts
    recent: QualityCounts

    def warning(self, config: QualityConfig) -> QualityWarning | None:
        """The pair's warning under ``config`` (whose window must be the one these stats used)."""
        if config.window != self.window:
            raise ValueError(f"stats computed over the last {self.window}, config asks for {config.window}")
        return check(self.model, self.task_type, self.recent, config)

    def to_dict(self, config: QualityConfig | None = None) -> dict[str, object]:
        """JSON-serialisable, rates included; with ``config``, its ``warning`` too (message or None)."""
        data: dict[str, object] = {
            "model": self.model,
            "task_type": self.task_type,
            "window": self.window,
            "overall": self.overall.to_dict(),
            "recent": self.recent.to_dict(),
        }
        if config is not None:
            warning = self.warning(config)
            data["warning"] = None if warning is None else warning.message
        return data


def quality(query: Query, window: int = DEFAULT_WINDOW) -> list[QualityStats]:
    """Every pair, busiest first."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return [
        QualityStats(
            model=row["model"],
            task_type=row["task_type"],
            window=window,
            overall=QualityCounts(
                row["requests"], row["judged"], row["passed"], row["repaired"], row["fallbacks"]
            ),
            recent=recent(query, row["model"], row["task_type"], window),
        )
        for row in query(OVERALL_SQL, {})
    ]


def recent(query: Query, model: str, task_type: str, window: int) -> QualityCounts:
    """One pair's last ``window`` judged rows (cheap: see PAIR_WINDOW_SQL)."""
    (row,) = query(PAIR_WINDOW_SQL, {"model": model, "task_type": task_type, "window": window})
    n = int(row["requests"])
    return QualityCounts(n, n, int(row["passed"]), int(row["repaired"]), int(row["fallbacks"]))


def low_quality(query: Query, model: str, task_type: str, config: QualityConfig) -> QualityWarning | None:
    """``check`` on the pair's window, read with the one-pair query."""
    return check(model, task_type, recent(query, model, task_type, config.window), config)
