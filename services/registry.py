"""Map a run's Context to the process's Services, building them on first use.

In-process callers (CLI, chat UI, tests) install the Services they built; the LangGraph
dev server has no such hook, so a run there builds them lazily from its context.
"""

from __future__ import annotations

from config.loader import load_config
from services.container import Services
from services.context import Context

_services: dict[Context, Services] = {}


def services_for(context: Context | None) -> Services:
    """The Services for `context`, built from its config on first use."""
    key = context or Context()
    found = _services.get(key)
    if found is None:
        config = load_config(key.config_path, data_dir=key.data_dir)
        found = _services[key] = Services.create(config)
    return found


def install(context: Context, services: Services) -> None:
    """Make `services` serve every run with `context`."""
    _services[context] = services


def uninstall(context: Context) -> Services | None:
    """Forget the Services of `context` and return them (the caller closes them)."""
    return _services.pop(context, None)
