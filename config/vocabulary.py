"""Closed vocabularies shared by every layer (state, stats, UI, logs)."""

from __future__ import annotations

from typing import Literal, get_args

FallbackReason = Literal[
    "server_down",
    "not_installed",
    "load_failed",
    "timeout",
    "generation_error",
    "invalid_output",
]
"""Why the local path did not deliver: the seed's five, with invalid output split out."""
FALLBACK_REASONS: tuple[str, ...] = get_args(FallbackReason)
