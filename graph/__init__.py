"""The graph: wiring, edges, checkpointer and the ModelRouter face over it."""

from graph.builder import build_graph, compile_graph
from graph.router import BadPromptError, Event, ModelRouter, UnknownTaskError
from nodes.response import ModelResponse
from nodes.state import RequestIn, State

__all__ = [
    "BadPromptError",
    "Event",
    "ModelResponse",
    "ModelRouter",
    "RequestIn",
    "State",
    "UnknownTaskError",
    "build_graph",
    "compile_graph",
]
