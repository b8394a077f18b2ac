"""The model status panel: each local model's live status in the chat's sidebar."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import chainlit as cl

from graph.overview import models_overview, routed_models
from graph.warming import warm_models
from providers.errors import ProviderError
from providers.ollama_http import canonical
from services import Services
from ui.answer import panel_props

log = logging.getLogger(__name__)

ELEMENT_NAME = "Models"  # ui/public/elements/Models.jsx; also the sidebar's title


class StatusPanel:
    """One chat session's panel; refreshes on demand and, while a request runs, every `interval`."""

    def __init__(
        self, services: Services, interval: float = 0.5, *, earlier: StatusPanel | None = None
    ) -> None:
        """A panel for one chat session.

        `earlier` is the session's panel this one replaces (a new chat in the same tab): its element
        is reused, so the page never shows two, and so is what the page said of its width.
        """
        self._services = services
        self._interval = interval
        # One element id for the panel's life: the sidebar keeps its component mounted and
        # only the props change, instead of fetching and compiling the JSX on every refresh.
        self._element_id: str = earlier._element_id if earlier is not None else str(uuid.uuid4())
        self._shown: str | None = None
        self._lock = asyncio.Lock()
        self._notice: str | None = None  # what the last Warm or Unload came to
        self.narrow: bool | None = earlier.narrow if earlier is not None else None
        """The page's width class (modelyard.js reports it): a narrow page gets the panel only when
        the user asks for it, since a side element covers a phone's whole screen."""

    async def refresh(self, *, force: bool = False, asked: bool = False) -> None:
        """Ask Ollama now and redraw the panel if anything changed (always, with `force`).

        Sending the panel opens Chainlit's sidebar: on a narrow page (or one not heard from yet)
        that happens only when the user `asked` (the models command, the panel's own buttons).
        """
        if not asked and self.narrow is not False:
            return
        async with self._lock:
            props = panel_props(await models_overview(self._services))
            props["notice"] = self._notice
            props["task_types"] = list(self._services.config.routing.tasks)
            key = json.dumps(props, sort_keys=True)
            if key == self._shown and not force:
                return
            self._shown = key
            # A "side" element opens Chainlit's sidebar, titled with its name, and a re-sent one
            # (same id, new props) redraws it, reopening it if the user closed it. Not persisted:
            # the panel is live state, not part of the conversation.
            element = cl.CustomElement(id=self._element_id, name=ELEMENT_NAME, props=props, display="side")
            await element.send(for_id="", persist=False)

    async def warm(self, model: str) -> None:
        """The Warm button: load `model` (within the budget), the panel live while it loads."""
        if not self._routed(model):
            return
        async with self.live(asked=True):  # clicked in the open panel: keep it current
            results = await warm_models(self._services, [model], lambda _model, _line: None)
        self._notice = results[0].detail if results else None
        await self._refresh_quietly(force=True, asked=True)

    async def unload(self, model: str) -> None:
        """The Unload button: ask Ollama to free `model` now."""
        if not self._routed(model):
            return
        try:
            hosts = await self._services.pool.unload(canonical(model))
            where = "" if self._services.pool.single else f" on {', '.join(hosts) or 'no host (not loaded)'}"
            self._notice = f"Unloaded {model}{where}"
        except ProviderError as exc:
            self._notice = f"Could not unload {model}: {exc.message}"
        await self._refresh_quietly(force=True, asked=True)

    async def show_notice(self, notice: str) -> None:
        """Say what an action came to, at the top of the panel."""
        self._notice = notice
        await self._refresh_quietly(force=True, asked=True)

    def _routed(self, model: str) -> bool:
        # The page posts names: only the routing table's models are ever loaded or unloaded from it.
        return canonical(model) in routed_models(self._services)

    async def viewport(self, narrow: bool) -> None:
        """The page said how wide it is; a wide page that has not had its panel yet gets it now."""
        first = self.narrow is None
        self.narrow = narrow
        if first and not narrow:
            await self._refresh_quietly(force=True)
            # A resumed chat is replayed into the page right after it starts, which drops elements
            # sent meanwhile: send it once more when that is over.
            await self.refresh_later(0.6)

    async def refresh_later(self, delay: float) -> None:
        """Redraw after `delay` seconds.

        For a resumed chat: Chainlit replays the thread after on_chat_resume, replacing the
        page's elements, so a panel sent before that would be dropped.
        """
        await asyncio.sleep(delay)
        await self._refresh_quietly(force=True)

    @asynccontextmanager
    async def live(self, *, asked: bool = False) -> AsyncIterator[None]:
        """Keep the panel current while the body runs (a request), then show where it ended."""
        poller = asyncio.create_task(self._poll(asked))
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await self._refresh_quietly(asked=asked)

    async def _poll(self, asked: bool) -> None:
        while True:
            await self._refresh_quietly(asked=asked)
            await asyncio.sleep(self._interval)

    async def _refresh_quietly(self, *, force: bool = False, asked: bool = False) -> None:
        # The panel is a view: a broken refresh must not fail the request it accompanies.
        try:
            await self.refresh(force=force, asked=asked)
        except Exception:
            log.exception("model status panel refresh failed")
