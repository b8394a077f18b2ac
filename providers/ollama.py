"""Async client for Ollama's HTTP API, with one load per model however many ask at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx

from config.schema import OllamaConfig
from providers.errors import ProviderError
from providers.ollama_http import (
    canonical,
    error_from_message,
    error_text,
    final_stats,
    keep_alive_seconds,
    parse_line,
    parse_time,
    transport_error,
)
from providers.ollama_types import (
    Generation,
    InstalledModel,
    LoadedModel,
    ModelStatus,
    PullProgress,
)

log = logging.getLogger(__name__)
_RETRY_STATUSES = frozenset({502, 503})  # Ollama answers 503 when its queue is full


class OllamaClient:
    """The seed's Ollama face: list, status, load, unload, pull and streamed generate."""

    def __init__(
        self,
        config: OllamaConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = config
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            transport=transport,
        )
        self._keep_alive_s = keep_alive_seconds(config.keep_alive)
        self._loads: dict[str, asyncio.Task[float]] = {}
        self._in_use: Counter[str] = Counter()
        self._ready_until: dict[str, float] = {}
        self._last_error: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        """Where this client sends requests."""
        return self._cfg.base_url

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- inspection -------------------------------------------------------------------------

    async def list_available_models(self) -> list[InstalledModel]:
        """Models installed in Ollama (`/api/tags`)."""
        data = await self._get_json("/api/tags")
        return [
            InstalledModel(
                name=str(m["name"]),
                size=int(m.get("size") or 0),
                parameter_size=(m.get("details") or {}).get("parameter_size"),
                quantization=(m.get("details") or {}).get("quantization_level"),
            )
            for m in data.get("models") or []
        ]

    async def list_loaded_models(self) -> list[LoadedModel]:
        """Models resident in memory (`/api/ps`), and when each will be unloaded."""
        data = await self._get_json("/api/ps")
        return [
            LoadedModel(
                name=str(m["name"]),
                size=int(m.get("size") or 0),
                size_vram=int(m.get("size_vram") or 0),
                expires_at=parse_time(m.get("expires_at")),
            )
            for m in data.get("models") or []
        ]

    async def get_model_status(self, model: str) -> ModelStatus:
        """Ollama's `/api/ps` joined with the requests this process has in flight."""
        name = canonical(model)
        if self._in_use[name]:
            return ModelStatus.IN_USE
        if name in self._loads:
            return ModelStatus.LOADING
        return self.status_from(name, await self.list_loaded_models())

    def status_from(self, model: str, loaded: list[LoadedModel]) -> ModelStatus:
        """The status of `model` given an `/api/ps` listing and this process's requests."""
        name = canonical(model)
        if self._in_use[name]:
            return ModelStatus.IN_USE
        if name in self._loads:
            return ModelStatus.LOADING
        for entry in loaded:
            if entry.name == name:
                self._remember_expiry(name, entry.expires_at)
                return ModelStatus.READY
        # Ollama unloaded it (keep-alive ran out) even if this process loaded it.
        self._ready_until.pop(name, None)
        return ModelStatus.ERROR if name in self._last_error else ModelStatus.NOT_LOADED

    def known_ready(self, model: str) -> bool:
        """True when Ollama told us (or we made sure) the model stays loaded for a while yet."""
        until = self._ready_until.get(canonical(model))
        return until is not None and until > self._clock() + 1.0

    def last_error(self, model: str) -> str | None:
        """Why the last load of `model` failed, if it did."""
        return self._last_error.get(canonical(model))

    # -- lifecycle ---------------------------------------------------------------------------

    async def load_model(self, model: str) -> float:
        """Load `model` (empty generate with keep_alive); concurrent callers share one load.

        Returns the seconds this caller waited.
        """
        name = canonical(model)
        started = self._clock()
        task = self._loads.get(name)
        if task is None:
            task = asyncio.create_task(self._load(name), name=f"ollama-load:{name}")
            self._loads[name] = task
            task.add_done_callback(lambda t: self._load_done(name, t))
        await asyncio.shield(task)
        return self._clock() - started

    async def unload_model(self, model: str) -> None:
        """Ask Ollama to unload `model` now (`keep_alive: 0`)."""
        name = canonical(model)
        await self._post_json("/api/generate", {"model": name, "keep_alive": 0}, name)
        self._ready_until.pop(name, None)

    async def pull_model(self, model: str) -> AsyncIterator[PullProgress]:
        """Pull `model`, yielding Ollama's progress lines; errors become `not_installed`."""
        name = canonical(model)
        body = {"model": name, "stream": True}
        try:
            async with self._http.stream("POST", "/api/pull", json=body, timeout=None) as resp:
                if resp.status_code != 200:
                    message = error_text(await resp.aread())
                    raise ProviderError("not_installed", f"pulling {name} failed: {message}")
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        chunk = parse_line(line, name)
                    except ProviderError as exc:
                        raise ProviderError(
                            "not_installed", f"pulling {name} failed: {exc.message}"
                        ) from None
                    yield PullProgress(
                        status=str(chunk.get("status", "")),
                        completed=chunk.get("completed"),
                        total=chunk.get("total"),
                    )
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, f"the pull of {name}") from None

    # -- generation --------------------------------------------------------------------------

    async def generate(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        on_token: Callable[[str], None] | None = None,
        response_format: dict[str, Any] | str | None = None,
    ) -> Generation:
        """Stream a chat reply, calling `on_token` per piece; bounded by first-token and total limits."""
        name = canonical(model)
        body: dict[str, Any] = {
            "model": name,
            "messages": messages,
            "stream": True,
            "keep_alive": self._cfg.keep_alive,
        }
        if response_format is not None:
            body["format"] = response_format
        # A model that may need loading inside this call gets the load allowance too.
        first_limit = self._cfg.first_token_timeout
        if not self.known_ready(name):
            first_limit += self._cfg.load_timeout
        self._in_use[name] += 1
        try:
            for attempt in range(self._cfg.max_retries + 1):
                try:
                    return await self._stream_chat(name, body, first_limit, on_token)
                except _Retryable as exc:
                    if attempt == self._cfg.max_retries:
                        raise exc.error from None
                    log.warning(
                        "retrying %s after %s (%d/%d)",
                        name,
                        exc.error,
                        attempt + 1,
                        self._cfg.max_retries,
                    )
                    await asyncio.sleep(0.2 * 2**attempt)
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._in_use[name] -= 1
            if not self._in_use[name]:
                del self._in_use[name]

    async def _stream_chat(
        self,
        name: str,
        body: dict[str, Any],
        first_limit: float,
        on_token: Callable[[str], None] | None,
    ) -> Generation:
        loop = asyncio.get_running_loop()
        started = loop.time()
        total_deadline = started + first_limit + self._cfg.timeout
        first_token_at: float | None = None
        parts: list[str] = []
        try:
            async with asyncio.timeout_at(started + first_limit) as deadline:
                # Our own deadlines bound the stream; httpx's read timeout would cut a slow model short.
                unbounded = httpx.Timeout(None, connect=self._cfg.connect_timeout)
                async with self._http.stream("POST", "/api/chat", json=body, timeout=unbounded) as resp:
                    if resp.status_code != 200:
                        err = error_from_message(error_text(await resp.aread()), name, resp.status_code)
                        raise _Retryable(err) if resp.status_code in _RETRY_STATUSES else err
                    async for line in resp.aiter_lines():
                        if not line.strip():
                            continue
                        chunk = parse_line(line, name)
                        text = str((chunk.get("message") or {}).get("content") or "")
                        if text:
                            if first_token_at is None:
                                first_token_at = loop.time()
                                deadline.reschedule(total_deadline)
                            parts.append(text)
                            if on_token is not None:
                                on_token(text)
                        if chunk.get("done"):
                            self._ready_until[name] = self._clock() + self._keep_alive_s
                            stats = final_stats(chunk, started, first_token_at, loop.time())
                            return Generation("".join(parts), stats)
        except TimeoutError:
            if first_token_at is None:
                raise ProviderError("timeout", f"{name} sent no token within {first_limit:g} s") from None
            raise ProviderError("timeout", f"{name} did not finish within {self._cfg.timeout:g} s") from None
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            err = transport_error(exc, self.base_url, f"generation with {name}")
            raise (_Retryable(err) if first_token_at is None else err) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, f"generation with {name}") from None
        raise ProviderError("generation_error", f"{name}: stream ended without a final chunk")

    # -- internals ---------------------------------------------------------------------------

    async def _load(self, name: str) -> float:
        started = self._clock()
        body = {"model": name, "keep_alive": self._cfg.keep_alive, "stream": False}
        try:
            await self._post_json("/api/generate", body, name, timeout=self._cfg.load_timeout)
        except ProviderError as exc:
            self._last_error[name] = exc.message
            raise
        self._last_error.pop(name, None)
        self._ready_until[name] = self._clock() + self._keep_alive_s
        return self._clock() - started

    def _load_done(self, name: str, task: asyncio.Task[float]) -> None:
        self._loads.pop(name, None)
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter already got it through the shield

    def _remember_expiry(self, name: str, expires_at: datetime | None) -> None:
        if expires_at is None:
            return
        remaining = (expires_at - datetime.now(expires_at.tzinfo)).total_seconds()
        self._ready_until[name] = self._clock() + remaining

    async def _get_json(self, path: str) -> dict[str, Any]:
        try:
            resp = await self._http.get(path)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, f"GET {path}") from None
        if resp.status_code != 200:
            raise error_from_message(error_text(resp.content), path, resp.status_code)
        data = resp.json()
        return data if isinstance(data, dict) else {}

    async def _post_json(
        self, path: str, body: dict[str, Any], model: str, timeout: float | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=self._cfg.connect_timeout)
        try:
            resp = await self._http.post(path, json=body, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.base_url, f"POST {path} for {model}") from None
        if resp.status_code != 200:
            raise error_from_message(error_text(resp.content), model, resp.status_code)
        data = resp.json()
        return data if isinstance(data, dict) else {}


class _Retryable(Exception):
    """Wraps an error that may pass if tried again (busy server, dropped connection)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error
