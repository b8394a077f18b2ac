"""How well `understanding.turns` decides labelled follow-ups (understanding/data/followups.yaml).

`python -m understanding.evaluate` prints `followup_report` after the classifier's tables. Each
labelled follow-up replays its thread as artifacts (one per earlier turn, by task type, the way
finalize keeps them) and asks `decide_turn` about the follow-up, as the graph does. The rules
were tuned on `dev` only; `heldout` is the number to report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from config.schema import AppConfig
from understanding.training import DATA_DIR, Followup, Split, load_followups, thread_artifacts
from understanding.turns import TurnClassifier, TurnDecision, TurnKind, decide_turn

KINDS: tuple[TurnKind, ...] = get_args(TurnKind)


@dataclass(frozen=True)
class Outcome:
    """A follow-up and what `decide_turn` made of it."""

    case: Followup
    got: TurnDecision

    @property
    def kind_right(self) -> bool:
        """The decision's kind (new, revision, question) is the labelled one."""
        return self.got.kind == self.case.kind

    @property
    def right(self) -> bool:
        """Kind and task type both right, and the reference flag where it is labelled."""
        reference_ok = self.case.reference is None or self.got.reference == self.case.reference
        return self.kind_right and self.got.task == self.case.task and reference_ok


def run(config: AppConfig, classifier: TurnClassifier, cases: list[Followup]) -> list[Outcome]:
    """Decide every follow-up."""
    outcomes = []
    for case in cases:
        decision = decide_turn(
            config,
            classifier,
            case.text,
            explicit=case.explicit,
            artifacts=thread_artifacts(config, case),
            last_task=case.thread[-1][1] if case.thread else None,
        )
        outcomes.append(Outcome(case, decision))
    return outcomes


def followup_report(
    config: AppConfig, classifier: TurnClassifier, data_dir: Path = DATA_DIR, split: Split = "heldout"
) -> str:
    """Accuracy of the decision (kind, task and reference), of its kind and of its task type.

    Then a kind x kind confusion table and every miss, so that a regression names its case.
    """
    outcomes = run(config, classifier, load_followups(Path(data_dir) / "followups.yaml", split))
    if not outcomes:
        return f"follow-ups ({split}): none labelled"
    n = len(outcomes)
    kind_ok = sum(o.kind_right for o in outcomes)
    task_ok = sum(o.got.task == o.case.task for o in outcomes)
    both_ok = sum(o.right for o in outcomes)
    lines = [
        f"follow-ups ({split}, {n}): decision {both_ok / n:.1%} ({both_ok}/{n}), "
        f"kind {kind_ok / n:.1%}, task {task_ok / n:.1%}",
        "",
        "expected \\ decided  " + "  ".join(f"{k:>8}" for k in KINDS),
    ]
    counts = Counter((o.case.kind, o.got.kind) for o in outcomes)
    for want in KINDS:
        lines.append(f"{want:<19}" + "  ".join(f"{counts[(want, got)]:>8}" for got in KINDS))
    misses = [o for o in outcomes if not o.right]
    if misses:
        lines += ["", "misses:"]
        for o in misses:
            thread = " | ".join(task for _, task in o.case.thread)
            lines.append(
                f"  [{thread}] {o.case.text!r}: expected {o.case.kind} {o.case.task}"
                f"{' +ref' if o.case.reference else ''}, got {o.got.kind} {o.got.task}"
                f"{' +ref' if o.got.reference else ''} ({o.got.reason})"
            )
    return "\n".join(lines)


def accuracy(config: AppConfig, classifier: TurnClassifier, split: Split, data_dir: Path = DATA_DIR) -> float:
    """Share of follow-ups whose whole decision (kind, task, reference) is right."""
    outcomes = run(config, classifier, load_followups(Path(data_dir) / "followups.yaml", split))
    return sum(o.right for o in outcomes) / len(outcomes) if outcomes else 0.0
