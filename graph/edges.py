"""Conditional edges: small pure functions of the state, each returning the next node's name."""

from __future__ import annotations

from typing import Literal

from nodes.state import State
from nodes.validate_output import cloud_providers_left, next_step


def _cloud_or_finalize(state: State) -> Literal["cloud_fallback", "finalize"]:
    return "cloud_fallback" if cloud_providers_left(state) else "finalize"


def route_after_ensure(state: State) -> Literal["local_generate", "cloud_fallback", "finalize"]:
    """Generate locally when the model is ready; otherwise fall back or finish."""
    if state.get("model_status") == "ready":
        return "local_generate"
    return _cloud_or_finalize(state)


def route_after_generate(state: State) -> Literal["validate_output", "cloud_fallback", "finalize"]:
    """Validate a reply; a failed generation falls back or finishes."""
    if state.get("reply") is not None:
        return "validate_output"
    return _cloud_or_finalize(state)


def route_after_validate(state: State) -> Literal["finalize", "local_generate", "cloud_fallback"]:
    """Valid: finish. Invalid: the same model repairs while repairs are left, then the next provider.

    The local model first, then each cloud provider in turn; with nothing left, finish and
    deliver the artifact marked invalid.
    """
    return next_step(state)


def route_after_cloud(state: State) -> Literal["validate_output", "finalize"]:
    """A cloud reply is validated too; no reply from any provider finishes the request."""
    return "validate_output" if state.get("reply") is not None else "finalize"
