"""The benchmark table: one row per measured target, written as bench/results.json and .md."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("langgraph", "langchain-ollama", "chainlit", "aiohttp", "orjson", "httpx", "aiosqlite")


@dataclass
class Row:
    """One target: its figure (milliseconds, or requests per second), the baseline, whether it is met."""

    name: str
    what: str
    target: str
    met: bool
    median_ms: float | None = None
    p95_ms: float | None = None
    per_second: float | None = None
    baseline_median_ms: float | None = None
    samples: int = 0
    detail: dict[str, object] = field(default_factory=dict)


def ms(samples: list[float]) -> tuple[float, float]:
    """Median and p95 (nearest rank) of `samples` in seconds, as milliseconds."""
    ordered = sorted(s * 1000 for s in samples)
    p95 = ordered[max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))]
    return round(statistics.median(ordered), 2), round(p95, 2)


def machine() -> dict[str, object]:
    """What the figures depend on: CPUs, Python, the packages on the request path."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write(rows: list[Row], directory: Path = HERE) -> None:
    """bench/results.json (machine-readable) and bench/results.md (the README links it)."""
    about = machine()
    data = {"machine": about, "rows": [asdict(row) for row in rows]}
    (directory / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (directory / "results.md").write_text(markdown(rows, about), encoding="utf-8")


def _figure(row: Row) -> str:
    if row.per_second is not None:
        return f"{row.per_second:,.0f}/s"
    if row.median_ms is None:
        return "-"
    if row.p95_ms is None:
        return f"{row.median_ms:,.2f} ms"
    return f"{row.median_ms:,.2f} ms (p95 {row.p95_ms:,.2f})"


def markdown(rows: list[Row], info: dict[str, object]) -> str:
    """The headline table: each figure beside its baseline and target."""
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` on {info['cpus']} CPUs, Python {info['python']}, {info['measured_at']}. "
        "Emulators on loopback answer instantly, so each figure is modelyard's own cost.",
        "",
        "| row | what | figure | baseline | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = "-" if row.baseline_median_ms is None else f"{row.baseline_median_ms:,.2f} ms"
        lines.append(
            f"| `{row.name}` | {row.what} | {_figure(row)} | {base} | {row.target} | "
            f"{'yes' if row.met else '**no**'} |"
        )
    for note in _notes(rows):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _notes(rows: list[Row]) -> list[str]:
    """The sentences under the table: the peer and the floors, each when the run measured it."""
    details = {key: value for row in rows for key, value in row.detail.items()}
    notes = []
    if "litellm_router_added_ms" in details:
        notes.append(
            f"Peer, for scale: LiteLLM's `Router` with one cloud fallback configured and no validation "
            f"adds {details['litellm_router_added_ms']} ms at the median over a bare `ChatOllama` "
            f"({details['litellm_router_median_ms']} ms against {details['chatollama_median_ms']} ms), "
            "against the same emulator in the same run."
        )
    if "floor_per_second_at_50" in details:
        notes.append(
            f"Floor under `throughput`: the same five nodes in LangGraph doing nothing but the one "
            f"streamed reply (bench/floor.py: same checkpointer, server and concurrency, no "
            f"classification, validation or usage row) serve {details['floor_per_second_at_50']}/s at "
            f"50, at {details['floor_cpu_ms_per_request_at_50']} ms of CPU per request; the router "
            f"spends {details['cpu_ms_per_request_at_50']} ms. Round by round, interleaved: the router "
            f"{_listed(details['per_second_at_50_by_round'])}/s, the floor "
            f"{_listed(details['floor_per_second_at_50_by_round'])}/s."
        )
    if "floor_added_ms" in details:
        notes.append(
            f"Floor under `overhead_graph`: that bare graph adds {details['floor_added_ms']} ms over "
            "the same `ChatOllama` (documentation model, interleaved, same run)."
        )
    return notes


def _listed(values: object) -> str:
    return ", ".join(f"{v:,.0f}" for v in values) if isinstance(values, list) else str(values)
