"""The graph's nodes, one module each, plus the state they share."""

from nodes.classify_task import classify_task
from nodes.cloud_fallback import cloud_fallback
from nodes.ensure_model import ensure_model
from nodes.finalize import finalize
from nodes.local_generate import local_generate
from nodes.response import ModelResponse
from nodes.state import RequestIn, State
from nodes.validate_output import validate_output

__all__ = [
    "ModelResponse",
    "RequestIn",
    "State",
    "classify_task",
    "cloud_fallback",
    "ensure_model",
    "finalize",
    "local_generate",
    "validate_output",
]
