"""The Chainlit chat: ask for an artifact and watch which model handles it, step by step.

    make run    # or: uv run python -m ui.setup_frontend && uv run chainlit run ui/app.py

Run it from the repository root (Chainlit reads .chainlit/, chainlit.md and public/ from the
working directory). One ModelRouter serves the whole process; every chat is its own graph
thread, keyed by the Chainlit thread id, so a reloaded page continues the same conversation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import chainlit as cl
from chainlit.data.base import BaseDataLayer
from chainlit.input_widget import Select, Switch
from chainlit.types import CommandDict, ThreadDict
from starlette.datastructures import Headers

from config.database_url import database_url, secret_values
from config.loader import ConfigError, load_config
from database.errors import DatabaseUnavailableError
from graph.router import ModelRouter
from graph.warming import warm_models
from nodes.response import ModelResponse
from services.gc_tuning import settle_after_startup
from ui import cl_typed, exposure, history, models_add_cmd, redaction, setup_frontend
from ui.answer import usage_markdown
from ui.run_view import RunView
from ui.status_panel import StatusPanel

log = logging.getLogger("modelyard.ui")

CONFIG = load_config()  # a bad config stops start-up here, with the file and key at fault
redaction.install(secret_values(CONFIG))  # cloud keys and the database password
DATABASE = database_url(CONFIG)  # None: chat.db, checkpoints.db and usage.db in the data dir
if DATABASE is not None:
    from ui import history_postgres

    try:  # the chat tables, made now: this also proves the URL works before the server starts
        history_postgres.migrate(DATABASE)
    except (DatabaseUnavailableError, history_postgres.ChatHistoryError) as exc:
        print(f"modelyard: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
try:  # `chainlit run --host` puts the bind address here; Chainlit's default is loopback
    ACCESS = exposure.access_for(os.environ.get("CHAINLIT_HOST", "127.0.0.1"), os.environ)
except exposure.ExposureError as exc:
    print(f"modelyard: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
AUTO = "auto"
# The UI's latency budget choices; "task default" leaves each task's latency_budget_s in charge.
LATENCY_BUDGETS: dict[str, float | None] = {"task default": None, "10 s": 10.0, "20 s": 20.0, "60 s": 60.0}
COMMANDS: list[CommandDict] = [
    {
        "id": "usage",
        "icon": "chart-column",
        "description": "Per-model usage: requests, success, fallbacks, time, tokens",
        "button": False,
        "persistent": False,
        "selected": False,
    },
    {
        "id": "models",
        "icon": "cpu",
        "description": "Show each local model's status",
        "button": False,
        "persistent": False,
        "selected": False,
    },
]

# Chainlit checks for the secret right after importing this module; one per data dir. Several app
# processes behind one load balancer (MODELYARD_DATABASE_URL) must all set the same
# CHAINLIT_AUTH_SECRET, or a cookie signed by one is refused by the next.
os.environ.setdefault("CHAINLIT_AUTH_SECRET", history.auth_secret(CONFIG.data_dir))
for problem in setup_frontend.check():
    log.warning("front end not ready (%s): run `uv run python -m ui.setup_frontend`", problem)

_router: ModelRouter | None = None


def router() -> ModelRouter:
    """The process's router (opened at app start-up)."""
    if _router is None:
        raise RuntimeError("the app has not started: the ModelRouter is not open")
    return _router


@cl.on_app_startup
async def open_router() -> None:
    """Open the router once per process: services, checkpoints, usage store."""
    global _router
    _restore_asyncgen_hooks()
    _router = ModelRouter(CONFIG)
    await _router.open()
    # The Mermaid checker (a Node worker that warms every diagram type, ~4 s) starts with the app,
    # not with the first diagram request.
    _router.services.validators.prepare("mermaid")
    settle_after_startup()  # a long-running process: see services/gc_tuning.py
    if CONFIG.ollama.warmup:  # ollama.warmup: preload, most used first, while the page loads
        _background(_warm_up(_router))


async def _warm_up(opened: ModelRouter) -> None:
    results = await warm_models(opened.services, [], lambda model, line: log.info("warm-up: %s", line))
    for result in results:
        log.log(logging.INFO if result.ok else logging.WARNING, "warm-up: %s", result.detail)


def _restore_asyncgen_hooks() -> None:
    """Give the server's loop back asyncio's async-generator hooks.

    Chainlit's CLI applies nest_asyncio, whose run_until_complete never installs them. Without
    them an httpx stream left mid-iteration is closed by the garbage collector in whatever task
    runs at that moment, and every local generation logs "async generator ignored GeneratorExit".
    """
    if sys.get_asyncgen_hooks().finalizer is None:
        loop = asyncio.get_running_loop()
        sys.set_asyncgen_hooks(
            firstiter=getattr(loop, "_asyncgen_firstiter_hook", None),
            finalizer=getattr(loop, "_asyncgen_finalizer_hook", None),
        )


@cl.on_app_shutdown
async def close_router() -> None:
    """Close what `open_router` opened."""
    global _router
    for task in list(_tasks):  # a warm-up still loading must not outlive the services it uses
        task.cancel()
    if _router is not None:
        await _router.aclose()
        _router = None


@cl.data_layer
def chat_history() -> BaseDataLayer:
    """Chainlit's SQLAlchemy data layer on the data dir's chat.db, or on PostgreSQL.

    chat.db's tables are created first; PostgreSQL's were made at import, and every app process
    behind a load balancer sees the same chats there.
    """
    if DATABASE is not None:
        return history.data_layer_at(history_postgres.conninfo(DATABASE))
    path = CONFIG.data_dir / history.CHAT_DB
    history.migrate(path)
    return history.data_layer(path)


if ACCESS.mode == "local":

    @cl.header_auth_callback
    async def local_user(headers: Headers) -> cl.User | None:
        """Everyone who reaches this loopback app is the one local user: no login page."""
        return cl.User(identifier=history.LOCAL_USER, metadata={"provider": "local"})

else:

    @cl.password_auth_callback
    async def password_user(username: str, password: str) -> cl.User | None:
        """Off loopback: the user and password from the environment (ui/exposure.py)."""
        if ACCESS.check(username, password):
            return cl.User(identifier=username, metadata={"provider": "password"})
        return None


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    """The common requests, one click away."""
    return [
        cl.Starter(label="ERD for a blog", message="ERD for a blog with users, posts, comments and tags"),
        cl.Starter(label="Login flowchart", message="Flowchart of a login with password reset"),
        cl.Starter(label="HTML landing page", message="HTML landing page for a bakery"),
        cl.Starter(label="JIRA breakdown", message="JIRA tickets for a password reset feature"),
        cl.Starter(label="Usage dashboard", message="Show the usage dashboard", command="usage"),
    ]


def _budget_index(chosen: object) -> int:
    names = list(LATENCY_BUDGETS)
    return names.index(chosen) if isinstance(chosen, str) and chosen in names else 0


async def _start_session(settings: dict[str, Any], *, resumed: bool = False) -> None:
    """Settings, commands and the status panel of a new or resumed chat."""
    tasks = [AUTO, *CONFIG.routing.tasks]
    task = settings.get("task_type")
    settings_panel = cl.ChatSettings(
        [
            Switch(
                id="force_local",
                label="Force local only",
                initial=bool(settings.get("force_local", CONFIG.fallback.force_local_default)),
                description="Never call a cloud model: if the local model fails, say so instead.",
            ),
            Select(
                id="task_type",
                label="Task type",
                values=tasks,
                initial_index=tasks.index(task) if task in tasks else 0,
                description="auto: decided from your request. Applies to your next message.",
            ),
            Select(
                id="latency_budget",
                label="Latency budget",
                values=list(LATENCY_BUDGETS),
                initial_index=_budget_index(settings.get("latency_budget")),
                description="How long an answer may wait to start. A cold model that loads slower than "
                "this on this machine gives way to a warm alternate, or to the cloud.",
            ),
        ]
    )
    await cl_typed.send(settings_panel)
    await cl.context.emitter.set_commands(COMMANDS)
    panel = _panel(fresh=True)
    if resumed:
        # Chainlit replays the thread right after this hook returns, replacing the page's
        # elements: the panel must come after that, and no hook runs then.
        _background(panel.refresh_later(0.5))
    else:
        await panel.refresh(force=True)


_tasks: set[asyncio.Task[None]] = set()


def _background(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` without waiting for it, keeping a reference until it is done."""
    task = asyncio.create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


@cl.on_chat_start
async def chat_start() -> None:
    """A new chat: default settings."""
    await _start_session({})


@cl.on_chat_resume
async def chat_resume(thread: ThreadDict) -> None:
    """A reloaded or reopened chat: Chainlit restores the messages, we restore its settings."""
    await _start_session(cl.context.session.chat_settings, resumed=True)


@cl.on_window_message
async def window_message(data: Any) -> None:
    """The model panel's buttons: {"modelyard": "refresh_models" | "warm_model" | "unload_model", "model"}.

    Not actions: calling one before the first message would start a thread named after it.
    """
    if not isinstance(data, dict):
        return
    action, model = data.get("modelyard"), data.get("model")
    if action == "usage":  # the "Usage dashboard" starter (modelyard.js): shown, no chat started
        await _send_usage()
    elif action == "refresh_models":
        await _panel().refresh(force=True, asked=True)
    elif action == "viewport" and isinstance(data.get("narrow"), bool):
        await _panel().viewport(data["narrow"])
    elif action == "warm_model" and isinstance(model, str):
        await _panel().warm(model)
    elif action == "unload_model" and isinstance(model, str):
        await _panel().unload(model)
    elif action == "add_model" and isinstance(model, str) and isinstance(data.get("task"), str):
        await _panel().show_notice(await _add_model(model.strip(), data["task"]))


async def _add_model(model: str, task: str) -> str:
    """The panel's Add: route `task` to `model` in the config file, then serve with it at once."""
    opened = router()
    try:
        report, done = await asyncio.to_thread(models_add_cmd.add_model, opened.config, model, task)
        if report["change"] != "none":
            opened.reroute(await asyncio.to_thread(load_config, report["path"]))
    except (models_add_cmd.AddRefused, ConfigError, ValueError) as exc:
        return f"Not added: {exc}"
    return done


# Live objects per Chainlit session, outside cl.user_session (which is saved with the thread).
_panels: dict[str, StatusPanel] = {}


def _panel(*, fresh: bool = False) -> StatusPanel:
    """The current session's status panel."""
    session_id = cl.context.session.id
    if fresh or session_id not in _panels:
        earlier = _panels.get(session_id)
        _panels[session_id] = StatusPanel(router().services, earlier=earlier)
    return _panels[session_id]


@cl.on_chat_end
async def chat_end() -> None:
    """Forget the session's panel (a reconnecting tab gets a new one)."""
    _panels.pop(cl.context.session.id, None)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Run the graph for one request, or answer a command."""
    if message.command == "usage":
        await _send_usage()
        return
    if message.command == "models":
        await _panel().refresh(force=True, asked=True)
        return
    await _run(message.content)


async def _send_usage() -> None:
    usage, settings = router().services.usage, CONFIG.routing.quality
    stats, quality = await asyncio.to_thread(lambda: (usage.dashboard(), usage.quality(settings.window)))
    await cl_typed.send(cl.Message(content=usage_markdown(stats, quality, settings)))


async def _run(prompt: str) -> None:
    settings = cl.context.session.chat_settings
    task = settings.get("task_type") or AUTO
    panel = _panel()
    view = RunView(CONFIG, on_model_status=panel.refresh)
    async with panel.live():
        try:
            async for item in router().stream(
                prompt,
                task_type=None if task == AUTO else task,
                thread_id=cl.context.session.thread_id,
                force_local=bool(settings.get("force_local", CONFIG.fallback.force_local_default)),
                latency_budget_s=LATENCY_BUDGETS.get(settings.get("latency_budget") or ""),
            ):
                if isinstance(item, ModelResponse):
                    await view.finish(item)
                else:
                    await view.handle(item)
        except asyncio.CancelledError:  # the Stop button: close the open step, then stop
            await view.stop()
            raise
        except Exception as exc:  # e.g. a task type the config no longer routes: say so, keep serving
            await view.fail(exc)
