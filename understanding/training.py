"""What the learned layers are fitted to, and the shape of labelled follow-ups.

`understanding/data/train.yaml` holds labelled requests and follow-ups written for training
only (never for evaluation). Its requests teach the task types of the same name in the
running config beside each type's `examples`; a type the config does not have is skipped, and
a type only the config has learns from its `examples` alone. Its follow-ups teach the turn
model (`understanding.turn_model`). Nothing here is read on the request path: the classifier
loads it once, in the background, beside the embedding model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from config.schema import AppConfig
from understanding.turns import ThreadArtifact, TurnClass, TurnKind

DATA_DIR = Path(__file__).parent / "data"
TRAIN_PATH = DATA_DIR / "train.yaml"
Split = Literal["dev", "heldout", "all", "train"]


@dataclass(frozen=True)
class Followup:
    """One labelled follow-up: the thread before it, its text and the expected decision."""

    thread: tuple[tuple[str, str], ...]
    """(request, task type) of each earlier turn, oldest first."""
    text: str
    kind: TurnKind
    task: str
    reference: bool | None
    split: str
    explicit: str | None = None

    @property
    def turn_class(self) -> TurnClass:
        """The label as the turn model learns it."""
        if self.kind == "new":
            return "new+reference" if self.reference else "new"
        return self.kind


def read_yaml(path: Path) -> dict[str, Any]:
    """A data file's mapping, parsed once per process and file version (the training set is large)."""
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def load_followups(path: Path, split: Split = "all") -> list[Followup]:
    """The labelled follow-ups of one split (or all of them); rows without a split are `train`."""
    cases = []
    for item in read_yaml(path).get("followups", []):
        item_split = str(item.get("split", "train"))
        if split != "all" and item_split != split:
            continue
        expect = item["expect"]
        cases.append(
            Followup(
                thread=tuple((str(t["text"]), str(t["task"])) for t in item["thread"]),
                text=str(item["text"]),
                kind=expect["kind"],
                task=str(expect["task"]),
                reference=expect.get("reference"),
                split=item_split,
                explicit=item.get("explicit"),
            )
        )
    return cases


def thread_artifacts(config: AppConfig, case: Followup) -> dict[str, ThreadArtifact]:
    """The thread's artifacts as finalize would have kept them: the latest per task type."""
    artifacts: dict[str, ThreadArtifact] = {}
    for turn, (request, task) in enumerate(case.thread, start=1):
        if task in config.routing.tasks:
            route = config.route(task)
            artifacts[task] = {"content": "", "turn": turn, "model": route.model, "request": request}
    return artifacts


def training_examples(config: AppConfig, path: Path = TRAIN_PATH) -> dict[str, tuple[str, ...]]:
    """Example requests per task type of `config`: its own first, then the shipped ones."""
    shipped: dict[str, list[str]] = {}
    if path.exists():
        for row in read_yaml(path).get("requests", []):
            shipped.setdefault(str(row["task"]), []).append(str(row["text"]))
    return {
        name: tuple(dict.fromkeys([*route.examples, *shipped.get(name, [])]))
        for name, route in config.routing.tasks.items()
        if route.examples or shipped.get(name)
    }


def training_followups(config: AppConfig, path: Path = TRAIN_PATH) -> list[Followup]:
    """The shipped follow-ups whose task types all exist in `config`."""
    if not path.exists():
        return []
    tasks = config.routing.tasks
    return [
        case
        for case in load_followups(path, "train")
        if case.task in tasks and all(task in tasks for _, task in case.thread)
    ]
