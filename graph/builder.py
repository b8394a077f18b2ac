"""The StateGraph wiring: one builder, compiled with or without a checkpointer."""

from __future__ import annotations

from collections.abc import Callable

from langgraph._internal._runnable import RunnableCallable
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
    builder.add_conditional_edges("ensure_model", _on_loop(route_after_ensure))
    builder.add_conditional_edges("local_generate", _on_loop(route_after_generate))
    builder.add_conditional_edges("validate_output", _on_loop(route_after_validate))
    builder.add_conditional_edges("cloud_fallback", _on_loop(route_after_cloud))
    builder.add_edge("finalize", END)
    return builder


def _on_loop(route: Callable[[State], str]) -> RunnableCallable:
    """The edge as LangGraph's own runnable, with a coroutine and without tracing.

    Given a plain function, LangGraph runs it in a worker thread and reports it to the callback
    system as a run of its own: two tasks and a thread hop per edge, ~0.5 ms of each request for
    a dictionary lookup. The route's name and its Literal return type (whence LangGraph and
    Studio's drawing learn the targets) stay. RunnableCallable is internal to LangGraph: uv.lock
    pins the version, and tests/test_studio.py checks the drawn edges.
    """

    async def run(state: State) -> str:
        return route(state)

    return RunnableCallable(route, run, name=route.__name__, trace=False)


def compile_graph(checkpointer: BaseCheckpointSaver[str] | None = None) -> Graph:
    """Compile the one builder; the app passes its SQLite saver, Studio passes none."""
    return build_graph().compile(checkpointer=checkpointer, name="modelyard")
