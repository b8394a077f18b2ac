"""Conditional edges: small pure functions of the state, each returning the next node's name."""

from __future__ import annotations

from typing import Literal

from nodes.state import State


def _cloud_or_finalize(state: State) -> Literal["cloud_fallback", "finalize"]:
    tried = state.get("cloud_tried", [])
    remaining = [p for p in state.get("cloud_providers", []) if p not in tried]
    return "cloud_fallback" if remaining else "finalize"


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
    """Valid: finish. Invalid local: repair while repairs are left, then the cloud. Invalid cloud: next."""
    validation = state.get("validation")
    if validation is None:
        raise ValueError("route_after_validate reached without a validation verdict")
    if validation.get("valid"):
        return "finalize"
    if state.get("reply_source") == "local" and state.get("repairs_left", 0) > 0:
        return "local_generate"
    return _cloud_or_finalize(state)


def route_after_cloud(state: State) -> Literal["validate_output", "finalize"]:
    """A cloud reply is validated too; no reply from any provider finishes the request."""
    return "validate_output" if state.get("reply") is not None else "finalize"
