"""The StateGraph wiring: one builder, compiled with or without a checkpointer."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.edges import route_after_cloud, route_after_ensure, route_after_generate, route_after_validate
from nodes.classify_task import classify_task
from nodes.cloud_fallback import cloud_fallback
from nodes.ensure_model import ensure_model
from nodes.finalize import finalize
from nodes.local_generate import local_generate
from nodes.state import RequestIn, State
from nodes.validate_output import validate_output
from services import Context

Graph = CompiledStateGraph[State, Context, RequestIn, State]


def build_graph() -> StateGraph[State, Context, RequestIn, State]:
    """Classify -> ensure model -> generate -> validate -> finalize, with cloud fallback on failure."""
    builder = StateGraph(State, context_schema=Context, input_schema=RequestIn)
    builder.add_node("classify_task", classify_task)
    builder.add_node("ensure_model", ensure_model)
    builder.add_node("local_generate", local_generate)
    builder.add_node("validate_output", validate_output)
    builder.add_node("cloud_fallback", cloud_fallback)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "classify_task")
    builder.add_edge("classify_task", "ensure_model")
    builder.add_conditional_edges("ensure_model", route_after_ensure)
    builder.add_conditional_edges("local_generate", route_after_generate)
    builder.add_conditional_edges("validate_output", route_after_validate)
    builder.add_conditional_edges("cloud_fallback", route_after_cloud)
    builder.add_edge("finalize", END)
    return builder


def compile_graph(checkpointer: BaseCheckpointSaver[str] | None = None) -> Graph:
    """Compile the one builder; the app passes its SQLite saver, Studio passes none."""
    return build_graph().compile(checkpointer=checkpointer, name="modelyard")
