"""The graph's runtime context: which config and data dir a run uses (never checkpointed)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    """Settings that select a process-wide `Services`; empty means the environment's defaults."""

    config_path: str | None = None
    """Path of a models.yaml; default: MODELYARD_CONFIG, else the packaged table."""
    data_dir: str | None = None
    """Where usage.db and checkpoints.db live; default: MODELYARD_DATA_DIR."""
    router: str | None = field(default=None, repr=False)
    """Set by an in-process ModelRouter to reach its own Services; leave empty (Studio)."""
