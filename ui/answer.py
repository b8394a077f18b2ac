"""What the chat shows, as plain data and Markdown: answers, the usage dashboard, the model panel.

No Chainlit here, so all of it is unit-tested without a browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from config.schema import QualityConfig
from ui.render import human_size, ollama_problem, until
from validators.jira import JiraTask

if TYPE_CHECKING:
    from graph.overview import Overview
    from nodes.response import ModelResponse
    from usage.quality import QualityStats
    from usage.store import ModelStats

Outcome = Literal["local", "fallback", "failed"]

# The code-fence language each validator's artifact is shown with. The browser script draws
# `mermaid` blocks and offers a sandboxed preview for `html`; None means the artifact is
# Markdown itself (documentation) and is shown rendered.
_FENCE_LANGUAGE: dict[str, str | None] = {
    "mermaid": "mermaid",
    "html": "html",
    "jira": "json",
    "code": "",
    "documentation": None,
}
# Chainlit's Markdown alerts (":::kind ... :::"): an icon and a colour, no emoji font needed.
# A failure is shown as an error message with its text as plain Markdown instead: errors carry
# URLs, which GFM turns into links, and a link splits the paragraph that makes an alert.
_ALERT: dict[Outcome, str] = {"local": "success", "fallback": "warning"}
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # ASCII punctuation: CommonMark lets each be escaped


# The dashboard's chart: drawn by the page script like a diagram, its source not shown under it
# (it is not an artifact to copy). Slices in mid-tones with dark labels read on both themes.
CHART_FENCE = "chart"
PIE_COLOURS = (
    "%%{init: {'themeVariables': {'pie1': '#f472b6', 'pie2': '#60a5fa', 'pie3': '#34d399', "
    "'pie4': '#fbbf24', 'pie5': '#a78bfa', 'pie6': '#f87171', 'pie7': '#2dd4bf', 'pie8': '#fb923c', "
    "'pieSectionTextColor': '#111827', 'pieStrokeColor': '#6b7280', 'pieOuterStrokeColor': '#6b7280'}}}%%"
)


def fence(body: str, language: str) -> str:
    """`body` as a fenced block that no backtick run inside it can close early."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{body.rstrip()}\n{ticks}"


def outcome(response: ModelResponse) -> Outcome:
    """How the request ended: a local artifact, a cloud one, or none that is valid."""
    if not response.ok:
        return "failed"
    return "fallback" if response.is_fallback else "local"


def alert(kind: str, text: str) -> str:
    """`text` in one of Chainlit's alert boxes, shown exactly as written.

    Chainlit only turns ":::kind" into an alert when the whole paragraph is a single text node,
    so every punctuation mark is escaped (no emphasis or code can split it) and the text is kept
    to one line. A URL would still become a link: keep URLs out of `text`.
    """
    escaped = _PUNCTUATION.sub(r"\\\1", " ".join(text.split()))
    return f"::: {kind}\n{escaped}\n:::"


def answer_markdown(response: ModelResponse, validator: str | None, final_line: str) -> str:
    """The final chat message: the artifact, then the seed's closing line."""
    kind = outcome(response)
    line = f"**Error:** {final_line}" if kind == "failed" else alert(_ALERT[kind], final_line)
    if not response.content:
        return line
    language = _FENCE_LANGUAGE.get(validator or "", "")
    tasks = jira_tasks(response.content) if validator == "jira" else None
    if tasks is not None:  # a table to read; the JSON itself is a download (ui/downloads.py)
        body = jira_markdown(tasks)
    else:
        body = response.content.strip() if language is None else fence(response.content, language)
    return f"{body}\n\n{line}"


def jira_tasks(content: str) -> list[JiraTask] | None:
    """The tasks of a JIRA answer; None unless it is a non-empty list of valid tasks (then shown as JSON)."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        data = data.get("tasks")
    if not isinstance(data, list) or not data:
        return None
    try:
        return [JiraTask.model_validate(item) for item in data]
    except ValidationError:
        return None


def story_points_total(tasks: Sequence[JiraTask]) -> str:
    """The line under the task table: the points summed, and how many tasks have no estimate."""
    total = sum(task.story_points or 0 for task in tasks)
    line = f"**Total: {total} story point{'' if total == 1 else 's'}**"
    unestimated = sum(task.story_points is None for task in tasks)
    if unestimated:
        line += f" ({unestimated} of {len(tasks)} task{'' if len(tasks) == 1 else 's'} not estimated)"
    return line


def jira_markdown(tasks: Sequence[JiraTask]) -> str:
    """JIRA tasks as a Markdown table, one row per task, with the story points totalled under it."""
    lines = [
        "| Summary | Description | Acceptance criteria | Story points | Type |",
        "|---|---|---|--:|---|",
    ]
    for task in tasks:
        criteria = " ".join(f"\u2022 {_inline(c)}" for c in task.acceptance_criteria if c.strip())
        points = "-" if task.story_points is None else str(task.story_points)
        lines.append(
            f"| {_inline(task.summary)} | {_inline(task.description)} | {criteria or '-'} "
            f"| {points} | {_inline(task.type or '') or '-'} |"
        )
    return "\n".join(lines) + "\n\n" + story_points_total(tasks)


def _inline(text: str) -> str:
    """`text` fit for one table cell: on one line (a newline ends a Markdown table row), pipes escaped."""
    return _cell(" ".join(text.split()))


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def usage_markdown(
    stats: Sequence[ModelStats],
    quality: Sequence[QualityStats] = (),
    quality_config: QualityConfig | None = None,
) -> str:
    """The per-model dashboard as a Markdown table, with a pie of requests when it compares models.

    Then ``quality`` (per local model and task type), judged by ``quality_config`` (or the defaults).
    """
    if not stats:
        return "No requests recorded yet: ask for an artifact first."
    lines = [
        "**Usage by model**",
        "",
        "| model | where | requests | success | fallbacks | avg time | tokens in / out |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for s in stats:
        avg = "-" if s.avg_time_s is None else f"{s.avg_time_s:.2f} s"
        lines.append(
            f"| {_cell(s.model)} | {s.location} | {s.total} | {_percent(s.success_rate)} "
            f"| {_percent(s.fallback_rate)} | {avg} | {s.input_tokens} / {s.output_tokens} |"
        )
    if len(stats) > 1:
        slices = "\n".join(f'    "{_label(s.model)}" : {s.total}' for s in stats)
        lines += ["", fence(f"{PIE_COLOURS}\npie showData title Requests per model\n{slices}", CHART_FENCE)]
    if quality:
        lines += ["", _quality_markdown(quality, quality_config or QualityConfig())]
    return "\n".join(lines)


def _quality_markdown(quality: Sequence[QualityStats], config: QualityConfig) -> str:
    lines = [
        "**Quality by model and task type**",
        "",
        "| model | task | requests | pass rate | repair rate | fallback rate "
        f"| last {config.window} pass rate |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    notes: list[str] = []  # one alert per pair under the threshold, each its own paragraph
    for s in quality:
        warning = s.warning(config)
        if warning is not None:
            notes += ["", alert("warning", warning.message)]
        lines.append(
            f"| {_cell(s.model)} | {_cell(s.task_type)} | {s.overall.requests} "
            f"| {_percent(s.overall.pass_rate)} | {_percent(s.overall.repair_rate)} "
            f"| {_percent(s.overall.fallback_rate)} | {_percent(s.recent.pass_rate)}"
            f"{'' if warning is None else ' **!**'} |"
        )
    return "\n".join(lines + notes)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _label(text: str) -> str:
    return text.replace('"', "'")


def panel_props(overview: Overview) -> dict[str, Any]:
    """The model status panel's data: one entry per local model, and memory against the budget."""
    models = [
        {
            "model": row.model,
            "tasks": row.tasks,
            "installed": row.installed,
            "status": row.status,
            "size": human_size(row.size),
            "unloads": until(row.expires_at) if row.status in ("ready", "in_use") else "-",
            "cooldown": f"{row.cooldown_s:.0f} s" if row.cooldown_s else None,
            "bytes": row.size if row.status in ("ready", "in_use") else 0,
            "warnings": row.quality_warnings,
        }
        for row in overview.rows
    ]
    return {
        "ollama_url": overview.ollama_url,
        "error": ollama_problem(overview.ollama_url, overview.error) if overview.error else None,
        "models": models,
        "memory": {
            "resident": overview.resident,
            "budget": overview.budget,
            "label": memory_label(overview.resident, overview.budget),
        },
        # A pool's hosts (none with one host): whether each answers, what it holds, its memory.
        "hosts": [
            {
                "name": host.name,
                "url": host.url,
                "health": host.health,
                "loaded": host.loaded,
                "memory": memory_label(host.resident, host.budget),
            }
            for host in overview.hosts
        ],
    }


def memory_label(resident: int, budget: int | None) -> str:
    """Resident memory as the panel labels it: "9.0 GB of 13.0 GB", or "9.0 GB (no budget)"."""
    if budget is None:
        return f"{human_size(resident)} (no budget)"
    return f"{human_size(resident)} of {human_size(budget)}"
