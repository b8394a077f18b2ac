"""Map a run's Context to the process's Services, building them on first use.

In-process callers (CLI, chat UI, tests) install the Services they built; the LangGraph
dev server has no such hook, so a run there builds them lazily from its context.
"""

from __future__ import annotations

import asyncio

from config.loader import load_config
from services.container import Services
from services.context import Context

_services: dict[Context, Services] = {}


async def services_for(context: Context | None) -> Services:
    """The Services for `context`, built from its config on first use.

    Building reads the YAML and opens SQLite: that happens in a worker thread so the
    event loop never blocks (`langgraph dev` rejects blocking calls on its loop).
    """
    key = context or Context()
    found = _services.get(key)
    if found is None:
        built = await asyncio.to_thread(_build, key)
        found = _services.setdefault(key, built)
        if found is not built:  # a concurrent first run won the race
            await built.aclose()
    return found


def _build(context: Context) -> Services:
    return Services.create(load_config(context.config_path, data_dir=context.data_dir))


def install(context: Context, services: Services) -> None:
    """Make `services` serve every run with `context`."""
    _services[context] = services


def uninstall(context: Context) -> Services | None:
    """Forget the Services of `context` and return them (the caller closes them)."""
    return _services.pop(context, None)
