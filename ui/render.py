"""Plain-text rendering for the CLI: status lines and tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graph.overview import Overview
    from nodes.events import StatusEvent

_MARK = {"info": "·", "warning": "!", "error": "✗"}


def status_line(event: StatusEvent) -> str:
    """One stderr line per status event: `· [ensure_model] Loading mermaid-mistral ...`."""
    return f"{_MARK.get(event['level'], '·')} [{event['node']}] {event['message']}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def human_size(size: int | None) -> str:
    """Bytes as GB/MB, the way `ollama list` shows them."""
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def until(moment: datetime | None) -> str:
    """How long until `moment`, e.g. `in 29 min`."""
    if moment is None:
        return "-"
    seconds = (moment - datetime.now(moment.tzinfo or UTC)).total_seconds()
    if seconds > 3e8:
        return "never"
    if seconds < 90:
        return f"in {max(seconds, 0):.0f} s"
    return f"in {seconds / 60:.0f} min"


def overview_table(overview: Overview) -> str:
    """`modelyard models` as a table."""
    rows = [
        (
            r.task_type,
            r.model,
            {True: "yes", False: "no", None: "?"}[r.installed],
            r.status,
            human_size(r.size),
            until(r.expires_at),
        )
        for r in overview.rows
    ]
    return table(("task", "model", "installed", "status", "size", "unloads"), rows)


def stats_table(stats: list[dict[str, Any]]) -> str:
    """`modelyard stats` as a table (a local success after a repair counts in "repaired" too)."""
    rows = [
        (
            s["model"],
            s["location"],
            s["total"],
            f"{100 * s['success_rate']:.0f}%",
            s.get("repaired", 0),
            f"{100 * s['fallback_rate']:.0f}%",
            f"{s['avg_time_s']:.2f} s" if s["avg_time_s"] is not None else "-",
            s["input_tokens"] or 0,
            s["output_tokens"] or 0,
        )
        for s in stats
    ]
    return table(
        (
            "model",
            "where",
            "requests",
            "success",
            "repaired",
            "fallback",
            "avg time",
            "tokens in",
            "tokens out",
        ),
        rows,
    )
