"""Plain-text rendering for the CLI: status lines and tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.schema import QualityConfig
    from graph.overview import Overview
    from nodes.events import StatusEvent
    from usage.quality import QualityStats

_MARK = {"info": "·", "warning": "!", "error": "✗"}


def status_line(event: StatusEvent) -> str:
    """One stderr line per status event: `· [ensure_model] Loading mermaid-mistral ...`, with its bar."""
    line = f"{_MARK.get(event['level'], '·')} [{event['node']}] {event['message']}"
    progress = event.get("progress")
    return line if progress is None else f"{line} {progress_bar(progress)}"


def progress_bar(fraction: float, width: int = 20) -> str:
    """A load's or a pull's progress: `█████░░░░░░░░░░░░░░░ 25%`."""
    share = min(max(fraction, 0.0), 1.0)
    filled = round(width * share)
    return f"{'█' * filled}{'░' * (width - filled)} {100 * share:.0f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A left-aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ollama_problem(url: str, error: str) -> str:
    """Why Ollama could not be asked, naming its address once (most errors name it already)."""
    return error if url in error else f"Ollama at {url}: {error}"


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
    """`modelyard models` as a table, with resident memory against the budget under it."""
    rows = [
        (
            r.model,
            ", ".join(r.tasks),
            {True: "yes", False: "no", None: "?"}[r.installed],
            r.status,
            human_size(r.size),
            until(r.expires_at),
            f"{r.cooldown_s:.0f} s ({r.cooldown_reason})" if r.cooldown_s else "-",
            f"{r.load_s_median:.1f} s" if r.load_s_median is not None else "-",
        )
        for r in overview.rows
    ]
    headers = ("model", "tasks", "installed", "status", "size", "unloads", "cool-down", "load (median)")
    warnings = [f"! {message}" for r in overview.rows for message in r.quality_warnings]
    if overview.hosts:  # a pool: each host's own memory against its own budget
        return "\n".join([table(headers, rows), *warnings, "", hosts_table(overview)])
    return "\n".join([table(headers, rows), *warnings, "", memory_bar(overview.resident, overview.budget)])


def hosts_table(overview: Overview) -> str:
    """The pool's hosts: health, what each holds, memory against its budget, load and latency."""
    rows = [
        (
            h.name,
            h.url,
            h.health,
            ", ".join(h.loaded) or "-",
            "?" if h.installed is None else str(h.installed),
            human_size(h.resident) + (f" of {human_size(h.budget)}" if h.budget else ""),
            str(h.in_flight),
            "-" if h.latency_ms is None else f"{h.latency_ms:.0f} ms",
        )
        for h in overview.hosts
    ]
    headers = ("host", "url", "health", "loaded", "installed", "memory", "in flight", "latency")
    return table(headers, rows)


def memory_bar(resident: int, budget: int | None, width: int = 30) -> str:
    """Resident memory against the budget: `memory [#########.....] 9.0 GB of 13.0 GB`."""
    if budget is None:
        return f"memory {human_size(resident)} resident (no budget: ollama.vram_budget_gb)"
    filled = min(width, round(width * resident / budget)) if budget else width
    return f"memory [{'#' * filled}{'.' * (width - filled)}] {human_size(resident)} of {human_size(budget)}"


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


def percent(rate: float | None) -> str:
    """A rate in [0, 1] as `45%`; `-` when there was nothing to divide by."""
    return "-" if rate is None else f"{100 * rate:.0f}%"


def quality_table(rows: Sequence[QualityStats], config: QualityConfig) -> str:
    """`modelyard stats`' quality table; `!` marks each pair under the threshold, explained below."""
    lines: list[tuple[object, ...]] = []
    notes: list[str] = []
    for s in rows:
        warning = s.warning(config)
        if warning is not None:
            notes.append(f"! {warning.message}")
        lines.append(
            (
                s.model,
                s.task_type,
                s.overall.requests,
                percent(s.overall.pass_rate),
                percent(s.overall.repair_rate),
                percent(s.overall.fallback_rate),
                percent(s.recent.pass_rate),
                "!" if warning else "",
            )
        )
    headers = ("model", "task", "requests", "pass rate", "repair rate", "fallback rate")
    text = table((*headers, f"last {config.window} pass rate", ""), lines)
    return "\n\n".join([text, "\n".join(notes)]) if notes else text
