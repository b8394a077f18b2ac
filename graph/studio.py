"""The graph as `langgraph dev` (LangGraph Studio) loads it.

Compiled without a checkpointer: the dev server brings its own persistence and refuses a
graph that has one. The CLI and the app compile the same builder with the SQLite saver.
"""

from graph.builder import compile_graph

graph = compile_graph()
