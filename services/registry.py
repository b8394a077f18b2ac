"""Map a run's Context to the process's Services, building them on first use.

In-process callers (CLI, chat UI, tests) install the Services they built under a Context that
carries their own key (`Context.router`), so two routers with the same config never share or
close each other's. The LangGraph dev server has no such hook: a run there builds Services
lazily from its context, and those are closed when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from config.loader import load_config
from services.container import Services
from services.context import Context

log = logging.getLogger(__name__)

_services: dict[Context, Services] = {}
_lazy: dict[Context, Services] = {}
"""The subset of `_services` built here (not installed): ours to close."""
_atexit_registered = False
_CLOSE_TIMEOUT_S = 10.0


async def services_for(context: Context | None) -> Services:
    """The Services for `context`, built from its config on first use.

    Building reads the YAML and opens SQLite: that happens in a worker thread so the
    event loop never blocks (`langgraph dev` rejects blocking calls on its loop).
    """
    key = context or Context()
    found = _services.get(key)
    if found is not None:
        return found
    if key.router is not None:
        # Building a stand-in would leave it unclosed and split the router's state in two.
        raise RuntimeError("this run's ModelRouter is closed (its services are gone)")
    built = await asyncio.to_thread(_build, key)
    found = _services.setdefault(key, built)
    if found is not built:  # a concurrent first run won the race
        await built.aclose()
        return found
    _lazy[key] = built
    _close_at_exit()
    return built


def _build(context: Context) -> Services:
    return Services.create(load_config(context.config_path, data_dir=context.data_dir))


def install(context: Context, services: Services) -> None:
    """Make `services` serve every run with `context`."""
    _services[context] = services


def uninstall(context: Context) -> Services | None:
    """Forget the Services of `context` and return them (the caller closes them)."""
    _lazy.pop(context, None)
    return _services.pop(context, None)


def close_lazy_services() -> int:
    """Close every Services built lazily (by `services_for`); return how many. Runs at exit.

    The event loop that built them is gone by then: the usage database is closed first
    (synchronously), then the rest in a fresh loop; the Mermaid worker lease is released
    through the worker's own thread, so its Node process stops even if a client's close fails.
    """
    closed = 0
    while _lazy:
        key, services = _lazy.popitem()
        if _services.get(key) is services:
            del _services[key]
        services.usage.close()
        _run_to_end(services.aclose)
        closed += 1
    if closed:
        log.debug("closed %d lazily built services", closed)
    return closed


def _run_to_end(close: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `close` in a loop of its own: a thread's, when this one already runs a loop."""

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(close(), timeout=_CLOSE_TIMEOUT_S))
        except Exception:  # at exit: nothing left to tell but the log
            log.debug("closing lazily built services raised", exc_info=True)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    thread = threading.Thread(target=run, name="modelyard-close-services")
    thread.start()
    thread.join(_CLOSE_TIMEOUT_S + 1)


def _close_at_exit() -> None:
    # Registered on the first lazy build, after the shared Mermaid worker registered its own
    # handler: atexit runs last-in first-out, so the leases are returned before it stops.
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(close_lazy_services)
        _atexit_registered = True
