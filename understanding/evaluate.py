"""How well the classifier routes labelled requests, and what it costs.

    uv run python -m understanding.evaluate [--split heldout|dev|all] [--data PATH]

Prints the share of requests each layer decided and its accuracy, accuracy per task type
and per family, the family confusion matrix, and the per-request cost without the model
layer (p50/p95) beside the one-off embedding load time. Thresholds are tuned on `dev` only;
`heldout` is the number to report.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from config import AppConfig, load_config
from understanding.classifier import TaskClassifier
from understanding.training import DATA_DIR, Split, read_yaml
from understanding.types import LAYERS, Classification, family


@dataclass(frozen=True)
class Labelled:
    """One request of the evaluation set."""

    text: str
    task: str
    split: str


@dataclass
class Report:
    """Every outcome of one evaluation run."""

    outcomes: list[tuple[Labelled, Classification]] = field(default_factory=list)
    costs_ms: list[float] = field(default_factory=list)

    def accuracy(self, config: AppConfig, *, by_family: bool = False) -> float:
        """Share of requests routed to the right task (or, by_family, the right family)."""
        if not self.outcomes:
            return 0.0
        return sum(_right(config, want, got, by_family) for want, got in self.outcomes) / len(self.outcomes)

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0..100) of the per-request cost."""
        ordered = sorted(self.costs_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def _right(config: AppConfig, want: Labelled, got: Classification, by_family: bool) -> bool:
    if by_family:
        return family(config, want.task) == family(config, got.task)
    return want.task == got.task


def load_requests(path: Path, split: Split) -> list[Labelled]:
    """The labelled requests of `split` (`requests: [{text, task, split}]`)."""
    raw = read_yaml(path)
    items = [Labelled(str(r["text"]), str(r["task"]), str(r.get("split", "dev"))) for r in raw["requests"]]
    return [r for r in items if split == "all" or r.split == split]


def evaluate(classifier: TaskClassifier, requests: list[Labelled]) -> Report:
    """Classify each request as a fresh thread's first turn, timing every call."""
    report = Report()
    for item in requests:
        started = time.perf_counter()
        got = classifier.classify_fast(item.text)
        report.costs_ms.append((time.perf_counter() - started) * 1000)
        report.outcomes.append((item, got))
    return report


def format_report(config: AppConfig, report: Report, load_s: float | None) -> str:
    """The printed tables."""
    total = len(report.outcomes)
    lines = [
        f"requests: {total}   task accuracy: {report.accuracy(config):.3f}   "
        f"family accuracy: {report.accuracy(config, by_family=True):.3f}",
        "",
        f"{'layer':<14}{'share':>8}{'n':>6}{'task acc':>10}{'family acc':>12}",
    ]
    groups: dict[str, list[tuple[Labelled, Classification]]] = defaultdict(list)
    for want, got in report.outcomes:
        groups[got.layer].append((want, got))
    for layer in LAYERS:
        rows = groups.get(layer, [])
        if rows:
            lines.append(
                f"{layer:<14}{len(rows) / total:>8.1%}{len(rows):>6}"
                f"{_share(config, rows, False):>10.3f}{_share(config, rows, True):>12.3f}"
            )
    lines += ["", f"{'task':<16}{'n':>5}{'accuracy':>10}   most often mistaken for"]
    by_task: dict[str, list[tuple[Labelled, Classification]]] = defaultdict(list)
    for want, got in report.outcomes:
        by_task[want.task].append((want, got))
    for task in sorted(by_task):
        rows = by_task[task]
        wrong = Counter(got.task for want, got in rows if got.task != want.task).most_common(2)
        mistaken = ", ".join(f"{t} ({n})" for t, n in wrong)
        lines.append(f"{task:<16}{len(rows):>5}{_share(config, rows, False):>10.3f}   {mistaken}")
    lines += _family_tables(config, report)
    lines += [
        "",
        f"cost per request (no model layer): p50 {report.percentile_ms(50):.3f} ms, "
        f"p95 {report.percentile_ms(95):.3f} ms",
        f"learned layers ready (once per process, in the background): {load_s:.2f} s" if load_s else "",
    ]
    return "\n".join(lines)


def _share(config: AppConfig, rows: list[tuple[Labelled, Classification]], by_family: bool) -> float:
    return sum(_right(config, want, got, by_family) for want, got in rows) / len(rows) if rows else 0.0


def _family_tables(config: AppConfig, report: Report) -> list[str]:
    families = sorted({route.validator for route in config.routing.tasks.values()})
    matrix: Counter[tuple[str, str]] = Counter()
    for want, got in report.outcomes:
        matrix[(family(config, want.task), family(config, got.task))] += 1
    width = max(len(f) for f in families) + 2
    lines = ["", f"{'family':<16}{'n':>5}{'accuracy':>10}"]
    for fam in families:
        n = sum(matrix[(fam, other)] for other in families)
        if n:
            lines.append(f"{fam:<16}{n:>5}{matrix[(fam, fam)] / n:>10.3f}")
    lines += ["", "family confusion (rows: labelled, columns: chosen)"]
    lines.append(" " * 16 + "".join(f"{f:>{width}}" for f in families))
    for fam in families:
        lines.append(f"{fam:<16}" + "".join(f"{matrix[(fam, other)]:>{width}}" for other in families))
    return lines


# -- follow-ups ---------------------------------------------------------------------------------
# HOOK for the turn-decision work: `understanding.turns_eval.followup_report(config, classifier,
# data_dir, split) -> str` evaluates understanding/data/followups.yaml. It is imported lazily so
# this command runs before that module exists.


def followup_report(
    config: AppConfig, classifier: TaskClassifier, data_dir: Path, split: Split
) -> str | None:
    """The follow-up evaluation's tables, or None while understanding.turns_eval does not exist."""
    try:
        turns_eval = importlib.import_module("understanding.turns_eval")
    except ModuleNotFoundError as exc:
        if exc.name != "understanding.turns_eval":
            raise  # a broken turns_eval must show, not pass for a missing one
        return None
    text: str = turns_eval.followup_report(config, classifier, data_dir, split)
    return text


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation of one split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["heldout", "dev", "all"], default="heldout")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder with requests.yaml")
    args = parser.parse_args(argv)
    config = load_config()
    classifier = TaskClassifier(config)
    if not classifier.wait_ready(60):
        print(f"the embedding model did not load: {classifier.load_error}")
        return 1
    report = evaluate(classifier, load_requests(args.data / "requests.yaml", args.split))
    print(f"split: {args.split}")
    print(format_report(config, report, classifier.load_s))
    followups = followup_report(config, classifier, args.data, args.split)
    if followups is not None:
        print("\n" + followups)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
