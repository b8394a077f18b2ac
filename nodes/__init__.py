"""The graph's nodes, one module each, plus the state they share.

Nothing is imported here: `nodes.prompt_check` is used by commands that must not pay for
LangGraph's import (about 3 s), so each caller imports the module it needs.
"""
