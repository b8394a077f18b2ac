"""The StateGraph wiring: one builder, compiled with or without a checkpointer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast, get_args, get_type_hints

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.edges import route_after_cloud, route_after_ensure, route_after_generate, route_after_validate
from graph.storage import Stored, flat, packed
from nodes.classify_task import classify_task
from nodes.cloud_fallback import cloud_fallback
from nodes.ensure_model import ensure_model
from nodes.finalize import finalize
from nodes.local_generate import local_generate
from nodes.state import RequestIn, State
from nodes.validate_output import validate_output
from services import Context

Graph = CompiledStateGraph[Stored, Context, RequestIn, Stored]
Node = Callable[[State, Runtime[Context]], Awaitable[dict[str, Any]]]
Route = Callable[[State], str]


def build_graph() -> StateGraph[Stored, Context, RequestIn, Stored]:
    """Classify -> ensure model -> generate -> validate -> finalize, with cloud fallback on failure."""
    builder = StateGraph(Stored, context_schema=Context, input_schema=RequestIn)
    builder.add_node("classify_task", _stored(classify_task))
    for name, node, route in (
        ("ensure_model", ensure_model, route_after_ensure),
        ("local_generate", local_generate, route_after_generate),
        ("validate_output", validate_output, route_after_validate),
        ("cloud_fallback", cloud_fallback, route_after_cloud),
    ):
        builder.add_node(name, _routed(node, route), destinations=_targets(route))
    builder.add_node("finalize", _stored(finalize))
    builder.add_edge(START, "classify_task")
    builder.add_edge("classify_task", "ensure_model")
    builder.add_edge("finalize", END)
    return builder


def _stored(node: Node) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`node` on the flat State, its update written to the stored channels (graph/storage.py)."""

    async def run(stored: Stored, runtime: Runtime[Context]) -> dict[str, Any]:
        return packed(await node(flat(stored), runtime))

    run.__name__ = node.__name__
    return run


def _routed(node: Node, route: Route) -> Callable[..., Awaitable[Command[str]]]:
    """`_stored(node)`, then its conditional edge `route` on the state it leaves, in one step.

    A conditional edge of its own would read a fresh copy of the state: LangGraph copies every
    channel to apply the node's writes (pregel local_read), three times a request. Every field
    keeps only its last value, so the state with the node's update laid over it is that same
    state. The route stays a pure function of the state (graph/edges.py,
    tests/test_routing.py); `destinations` draws its edges in Studio.
    """

    async def run(stored: Stored, runtime: Runtime[Context]) -> Command[str]:
        state = flat(stored)
        update = await node(state, runtime)
        return Command(update=packed(update), goto=route(cast(State, {**state, **update})))

    run.__name__ = node.__name__
    return run


def _targets(route: Route) -> tuple[str, ...]:
    """The nodes `route` may name: the members of its Literal return type."""
    return get_args(get_type_hints(route)["return"])


def compile_graph(checkpointer: BaseCheckpointSaver[str] | None = None) -> Graph:
    """Compile the one builder; the app passes its SQLite saver, Studio passes none."""
    return build_graph().compile(checkpointer=checkpointer, name="modelyard")
