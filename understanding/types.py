"""What a classification says: the task type, which layer decided it and how sure it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.schema import AppConfig

Layer = Literal["explicit", "keywords", "semantic", "model", "carried_over", "default"]
LAYERS: tuple[Layer, ...] = ("explicit", "keywords", "semantic", "model", "carried_over", "default")
CARRIED_OVER_CONFIDENCE = 0.6  # a thread usually keeps to one kind of artifact


@dataclass(frozen=True)
class Classification:
    """The task type chosen for one request, and why."""

    task: str
    layer: Layer
    confidence: float
    """0..1: how sure the deciding layer was (1.0 for an explicit choice)."""
    runner_up: str | None = None
    """The next most likely task type, if the deciding layer had one."""


def family(config: AppConfig, task: str) -> str:
    """The task's family: the name of the validator that checks its artifacts.

    Tasks of one family produce the same kind of artifact (erd and architecture are both
    Mermaid), so confusing them costs far less than confusing families.
    """
    return config.route(task).validator
