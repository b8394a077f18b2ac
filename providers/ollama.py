"""Async client for Ollama's HTTP API, with one load per model however many ask at once.

What is loaded is Ollama's to say: it evicts models on its own (memory pressure, another
model loading, `ollama stop`, a restart), so a model counts as loaded only when `/api/ps`
(or our own successful load or reply) said so within the last `PS_MAX_AGE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp.http_exceptions import LineTooLong

from config.schema import OllamaConfig
from providers.errors import FallbackReason, ProviderError
from providers.ollama_budget import GB, MemoryBudget, Notify
from providers.ollama_http import (
    base_num_ctx,
    canonical,
    chunk_text,
    env_proxy,
    estimate_tokens,
    final_stats,
    malformed_reply,
    parse_line,
    parse_time,
    reply_error,
    sized_num_ctx,
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
PS_MAX_AGE_S = 1.0  # how long an /api/ps answer (or our own load/reply) is trusted
DRAIN_S = 1.0  # how long the end of a finished reply's body is waited for (keeps the connection)
MAX_LINE = 16 * 2**20  # an NDJSON line longer than this is not Ollama's (its lines are a token or stats)
# Dropped connections, which may pass if tried again before the first token (a refused one,
# ClientConnectorError, is a ClientOSError too: it is caught first, Ollama is down).
_DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OllamaClient:
    """The seed's Ollama face: list, status, load, unload, pull and streamed generate."""

    def __init__(
        self,
        config: OllamaConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        last_used: Callable[[str], float | None] | None = None,
    ) -> None:
        """`last_used(model)`: when (epoch seconds) any process last used it, for the budget's LRU."""
        self._cfg = config
        self._clock = clock
        self._base = config.base_url.rstrip("/")
        self._proxy = env_proxy(config.base_url)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._inspect_timeout = aiohttp.ClientTimeout(
            sock_connect=config.connect_timeout, sock_read=config.inspect_timeout
        )
        # Our own deadlines bound a reply (first token, total); a socket read limit would cut a
        # slow model short.
        self._stream_timeout = aiohttp.ClientTimeout(sock_connect=config.connect_timeout)
        self._num_ctx = {canonical(name): size for name, size in config.num_ctx.items()}
        self._loads: dict[str, asyncio.Task[float]] = {}
        self._in_use: Counter[str] = Counter()
        # model -> (when Ollama last confirmed it loaded, the runner's num_ctx if known)
        self._seen: dict[str, tuple[float, int | None]] = {}
        self._ps_at: float | None = None  # when the last /api/ps listing was asked for
        self._last_error: dict[str, str] = {}
        budget = config.vram_budget_gb
        self.budget = MemoryBudget(
            self, None if budget is None else int(budget * GB), config.budget_wait, last_used=last_used
        )

    @property
    def base_url(self) -> str:
        """Where this client sends requests."""
        return self._cfg.base_url

    async def aclose(self) -> None:
        """Close the connection pool."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use: aiohttp binds it to the running event loop.

        aiohttp, not httpx: its C parser reads a streamed reply for less CPU, 1.45 against 2.6 ms
        per reply alone and 1.4 against 3.7 ms with 50 at once (same emulator, same machine).
        """
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            # A pool belongs to its loop; one made on another (a test's earlier loop) is dropped.
            session = self._session = aiohttp.ClientSession(timeout=self._stream_timeout)
            self._session_loop = loop
        return session

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: aiohttp.ClientTimeout
    ) -> Any:
        """One request to Ollama (an aiohttp request context), through the environment's proxy if any."""
        return self._http().request(method, self._base + path, json=body, timeout=timeout, proxy=self._proxy)

    # -- inspection -------------------------------------------------------------------------

    async def list_available_models(self) -> list[InstalledModel]:
        """Models installed in Ollama (`/api/tags`)."""
        data = await self._inspect("/api/tags")
        try:
            return [
                InstalledModel(
                    name=str(m["name"]),
                    size=_int(m.get("size")) or 0,
                    parameter_size=(m.get("details") or {}).get("parameter_size"),
                    quantization=(m.get("details") or {}).get("quantization_level"),
                )
                for m in data.get("models") or []
            ]
        except (KeyError, TypeError, AttributeError):
            raise ProviderError("generation_error", "malformed model list from Ollama (/api/tags)") from None

    async def list_loaded_models(self) -> list[LoadedModel]:
        """Models resident in memory (`/api/ps`), and when each will be unloaded; refreshes the cache."""
        asked_at = self._clock()
        data = await self._inspect("/api/ps")
        try:
            loaded = [
                LoadedModel(
                    name=str(m["name"]),
                    size=_int(m.get("size")) or 0,
                    size_vram=_int(m.get("size_vram")) or 0,
                    expires_at=parse_time(m.get("expires_at")),
                    context_length=_int(m.get("context_length")),
                )
                for m in data.get("models") or []
            ]
        except (KeyError, TypeError, AttributeError):
            raise ProviderError("generation_error", "malformed model list from Ollama (/api/ps)") from None
        self._record_ps(asked_at, loaded)
        self.budget.note_sizes(loaded)
        return loaded

    def confirmed_loaded(self, model: str) -> bool:
        """True when Ollama said (or our own load or reply showed) within PS_MAX_AGE_S that it is loaded."""
        seen = self._seen.get(canonical(model))
        return seen is not None and self._clock() - seen[0] <= PS_MAX_AGE_S

    async def is_loaded(self, model: str) -> bool:
        """Whether Ollama has `model` loaded, from an `/api/ps` at most PS_MAX_AGE_S old.

        At most one round trip; none when the cache is fresh. Raises ProviderError when
        Ollama is down or does not answer within connect_timeout + inspect_timeout.
        """
        if self.confirmed_loaded(model):
            return True
        if self._ps_at is None or self._clock() - self._ps_at > PS_MAX_AGE_S:
            await self.list_loaded_models()
        return self.confirmed_loaded(model)

    async def get_model_status(self, model: str) -> ModelStatus:
        """Ollama's `/api/ps` (at most PS_MAX_AGE_S old) joined with this process's requests."""
        name = canonical(model)
        if self._in_use[name]:
            return ModelStatus.IN_USE
        if name in self._loads:
            return ModelStatus.LOADING
        if await self.is_loaded(name):
            return ModelStatus.READY
        return ModelStatus.ERROR if name in self._last_error else ModelStatus.NOT_LOADED

    def status_from(self, model: str, loaded: list[LoadedModel]) -> ModelStatus:
        """The status of `model` given an `/api/ps` listing and this process's requests."""
        name = canonical(model)
        if self._in_use[name]:
            return ModelStatus.IN_USE
        if name in self._loads:
            return ModelStatus.LOADING
        if any(entry.name == name for entry in loaded):
            return ModelStatus.READY
        return ModelStatus.ERROR if name in self._last_error else ModelStatus.NOT_LOADED

    def in_flight(self) -> int:
        """Loads and replies of this process running on this host now (a pool prefers the idler host)."""
        return sum(self._in_use.values()) + len(self._loads)

    def last_error(self, model: str) -> str | None:
        """Why the last load of `model` failed, if it did."""
        return self._last_error.get(canonical(model))

    def load_num_ctx(self, model: str) -> int:
        """The context window a load asks for: what every request that fits it asks for too."""
        return base_num_ctx(self._num_ctx.get(canonical(model)), self._cfg.max_num_ctx)

    # -- lifecycle ---------------------------------------------------------------------------

    async def load_model(
        self,
        model: str,
        *,
        keep_alive: str | int | None = None,
        notify: Notify | None = None,
        admitted: Callable[[], None] | None = None,
    ) -> float:
        """Load `model` (empty generate with keep_alive); concurrent callers share one load.

        `keep_alive` (default `ollama.keep_alive`) is how long Ollama keeps it resident after.
        With a memory budget, room is made first; `notify` hears what is unloaded for it, and
        `admitted` is called once there is room, as the load itself starts. Returns the seconds
        this caller waited.
        """
        name = canonical(model)
        started = self._clock()
        async with self.budget.admit(name, notify):
            if admitted is not None:
                admitted()
            task = self._loads.get(name)
            if task is None:
                task = asyncio.create_task(self._load(name, keep_alive), name=f"ollama-load:{name}")
                self._loads[name] = task
                task.add_done_callback(lambda t: self._load_done(name, t))
            await asyncio.shield(task)
        return self._clock() - started

    async def unload_model(self, model: str) -> None:
        """Ask Ollama to unload `model` now (`keep_alive: 0`)."""
        name = canonical(model)
        self._forget(name)
        await self._json_reply(
            "POST",
            "/api/generate",
            {"model": name, "keep_alive": 0},
            self._inspect_timeout,
            f"the unload of {name}",
            name,
        )
        self._forget(name)

    async def pull_model(self, model: str) -> AsyncIterator[PullProgress]:
        """Pull `model`, yielding Ollama's progress lines; errors become `not_installed`.

        A pull may take an hour, so it has no overall limit; it fails with `timeout` when no
        progress line arrives for `pull_stall_timeout` seconds.
        """
        name = canonical(model)
        stall = self._cfg.pull_stall_timeout
        what = f"the pull of {name}"
        stalled = ProviderError(
            "timeout",
            f"the pull of {name} stalled: no progress from Ollama for {stall:g} s (pull_stall_timeout)",
        )
        try:
            async with asyncio.timeout(stall):
                resp = await self._request(
                    "POST", "/api/pull", {"model": name, "stream": True}, self._stream_timeout
                )
        except aiohttp.ClientError as exc:
            raise transport_error(exc, self.base_url, what) from None
        except TimeoutError:
            raise stalled from None
        try:
            while True:
                try:
                    # Only the wait for the next line is bounded, never the consumer's own time.
                    async with asyncio.timeout(stall):
                        if resp.status != 200:
                            body = await resp.read()
                            err = reply_error(resp.status, body, what, self.base_url, model=name)
                            reason: FallbackReason = (
                                "server_down" if err.reason == "server_down" else "not_installed"
                            )
                            raise ProviderError(
                                reason, f"pulling {name} failed: {err.message}", err.status_code
                            )
                        line = await resp.content.readline(max_line_length=MAX_LINE)
                except aiohttp.ClientError as exc:
                    raise transport_error(exc, self.base_url, what) from None
                except LineTooLong:
                    raise ProviderError(
                        "not_installed", f"pulling {name} failed: a line over 16 MiB"
                    ) from None
                except TimeoutError:
                    raise stalled from None
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    chunk = parse_line(line, name)
                except ProviderError as exc:
                    raise ProviderError("not_installed", f"pulling {name} failed: {exc.message}") from None
                yield PullProgress(
                    status=str(chunk.get("status", "")),
                    completed=_int(chunk.get("completed")),
                    total=_int(chunk.get("total")),
                )
        finally:
            resp.release()

    # -- generation --------------------------------------------------------------------------

    def chat_options(self, model: str, messages: list[dict[str, str]]) -> dict[str, int]:
        """`num_ctx` and `num_predict` for a chat; ProviderError when the prompt cannot fit.

        A prompt larger than the window would be cut by Ollama without a word, so it is
        refused here and the graph falls back instead.
        """
        name = canonical(model)
        configured = self._num_ctx.get(name)
        prompt_tokens = estimate_tokens(messages)
        num_ctx = sized_num_ctx(prompt_tokens, self._cfg.num_predict, configured, self._cfg.max_num_ctx)
        if prompt_tokens >= num_ctx:
            key = "ollama.num_ctx" if configured is not None else "ollama.max_num_ctx"
            raise ProviderError(
                "generation_error",
                f"the prompt's ~{prompt_tokens} tokens do not fit {name}'s context window of {num_ctx} "
                f"tokens ({key}); it was not sent, since Ollama would silently cut it",
            )
        return {"num_ctx": num_ctx, "num_predict": min(self._cfg.num_predict, num_ctx - prompt_tokens)}

    async def generate(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        on_token: Callable[[str], None] | None = None,
        response_format: dict[str, Any] | str | None = None,
        keep_alive: str | int | None = None,
        notify: Notify | None = None,
    ) -> Generation:
        """Stream a chat reply, calling `on_token` per piece; bounded by first-token and total limits.

        Every call sends `keep_alive` (default `ollama.keep_alive`): Ollama resets a model's
        expiry to the value of the latest request that used it. The model is held inside the
        memory budget for the whole reply (`notify` hears what is unloaded to make room).
        """
        async with self.budget.admit(canonical(model), notify):
            return await self._generate(model, messages, on_token, response_format, keep_alive)

    async def _generate(
        self,
        model: str,
        messages: list[dict[str, str]],
        on_token: Callable[[str], None] | None,
        response_format: dict[str, Any] | str | None,
        keep_alive: str | int | None,
    ) -> Generation:
        name = canonical(model)
        options = self.chat_options(name, messages)
        body: dict[str, Any] = {
            "model": name,
            "messages": messages,
            "stream": True,
            "keep_alive": self._cfg.keep_alive if keep_alive is None else keep_alive,
            "options": options,
        }
        if response_format is not None:
            body["format"] = response_format
        # A reload always gets the load allowance: Ollama loads inside this call when the model
        # was not confirmed loaded just now, or was loaded with another context window.
        needs_load = not self._loaded_with(name, options["num_ctx"])
        first_limit = self._cfg.first_token_timeout + (self._cfg.load_timeout if needs_load else 0.0)
        self._in_use[name] += 1
        try:
            for attempt in range(self._cfg.max_retries + 1):
                try:
                    result = await self._stream_chat(name, body, first_limit, needs_load, on_token)
                    break
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
            else:  # pragma: no cover
                raise AssertionError("unreachable")
        except ProviderError as exc:
            if exc.reason != "timeout":  # a crash, a failed load, a lost server: ask Ollama again
                self._forget(name)
            raise
        finally:
            self._in_use[name] -= 1
            if not self._in_use[name]:
                del self._in_use[name]
        self._seen[name] = (self._clock(), options["num_ctx"])
        stats = dataclasses.replace(
            result.stats, num_ctx=options["num_ctx"], num_predict=options["num_predict"]
        )
        return Generation(result.text, stats)

    async def _stream_chat(
        self,
        name: str,
        body: dict[str, Any],
        first_limit: float,
        needs_load: bool,
        on_token: Callable[[str], None] | None,
    ) -> Generation:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # A model confirmed loaded may still be evicted between that look and this request: the
        # deadline leaves room for a reload, and a watchdog cuts it back to the first-token limit
        # unless a fresh /api/ps shows Ollama is loading the model again (a reload always gets the
        # load allowance).
        reload_room = 0.0 if needs_load else self._cfg.load_timeout
        first_token_at: float | None = None
        parts: list[str] = []
        what = f"chat with {name}"
        watchdog: asyncio.Task[bool] | None = None

        def reloading() -> bool:  # the watchdog saw Ollama load the model again
            return watchdog is not None and watchdog.done() and not watchdog.cancelled() and watchdog.result()

        try:
            async with asyncio.timeout_at(started + first_limit + reload_room) as deadline:
                if reload_room:
                    watchdog = asyncio.create_task(
                        self._reload_watch(name, deadline, started + first_limit, lambda: first_token_at)
                    )
                async with self._request("POST", "/api/chat", body, self._stream_timeout) as resp:
                    if resp.status != 200:
                        # A 500 before any token while Ollama loads the model is a failed load.
                        err = reply_error(
                            resp.status,
                            await resp.read(),
                            what,
                            self.base_url,
                            model=name,
                            loading=needs_load or reloading(),
                        )
                        raise _Retryable(err) if resp.status in _RETRY_STATUSES else err
                    content = resp.content
                    while line := await content.readline(max_line_length=MAX_LINE):
                        if not line.strip():
                            continue
                        chunk = parse_line(line, name)
                        text = chunk_text(chunk)
                        if text:
                            if first_token_at is None:
                                first_token_at = loop.time()
                                deadline.reschedule(first_token_at + self._cfg.timeout)
                            parts.append(text)
                            if on_token is not None:
                                on_token(text)
                        if chunk.get("done"):
                            stats = final_stats(chunk, started, first_token_at, loop.time())
                            # Read to the end of the body (the chunked terminator) before leaving:
                            # a response left unread closes its connection, and every request
                            # would then open a new one (a TCP handshake, more to a remote host).
                            # A server that holds the body open after "done" only loses the reuse.
                            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                                async with asyncio.timeout(DRAIN_S):
                                    await content.read()
                            return Generation("".join(parts), stats)
        except aiohttp.ClientConnectorError as exc:
            raise transport_error(exc, self.base_url, f"generation with {name}") from None
        except _DROPPED as exc:
            err = transport_error(exc, self.base_url, f"generation with {name}")
            raise (_Retryable(err) if first_token_at is None else err) from None
        except aiohttp.ClientError as exc:
            raise transport_error(exc, self.base_url, f"generation with {name}") from None
        except LineTooLong:
            raise ProviderError("generation_error", f"{name}: a stream line over 16 MiB") from None
        except TimeoutError:
            if first_token_at is None:
                limit = first_limit + reload_room if reloading() else first_limit
                raise ProviderError("timeout", f"{name} sent no token within {limit:g} s") from None
            raise ProviderError("timeout", f"{name} did not finish within {self._cfg.timeout:g} s") from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
        raise ProviderError("generation_error", f"{name}: stream ended without a final chunk")

    async def _reload_watch(
        self, name: str, deadline: asyncio.Timeout, at: float, first_token: Callable[[], float | None]
    ) -> bool:
        """At the first-token limit: keep the reload room (True) unless Ollama shows the model resident.

        Ollama shows a load in progress in one of three ways, by version: the model is not listed
        yet, it is listed with a zero `expires_at`, or `/api/ps` waits for the load to finish (the
        runner's lock is held while it loads). Only a listing with a real expiry means "just slow".
        """
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, at - loop.time()))
        if first_token() is not None:
            return False
        try:
            loaded = await self.list_loaded_models()
        except ProviderError:
            loaded = None  # no answer within the inspection limit: a load holds the scheduler
        if first_token() is not None:
            return False
        resident = loaded is not None and any(
            m.name == name and m.expires_at is not None and m.expires_at.year > 1 for m in loaded
        )
        if resident:
            deadline.reschedule(loop.time())  # loaded all along: the model is just slow
            return False
        log.info("%s is being loaded again by Ollama: allowing %g s more", name, self._cfg.load_timeout)
        return True

    # -- internals ---------------------------------------------------------------------------

    def _loaded_with(self, name: str, num_ctx: int) -> bool:
        seen = self._seen.get(name)
        if seen is None or self._clock() - seen[0] > PS_MAX_AGE_S:
            return False
        return seen[1] is None or seen[1] == num_ctx

    def _record_ps(self, asked_at: float, loaded: list[LoadedModel]) -> None:
        """Take an /api/ps listing asked for at `asked_at` as the truth about every model."""
        present = {m.name: m.context_length for m in loaded}
        for name, (when, _) in list(self._seen.items()):
            if name not in present and when <= asked_at:  # evicted; newer own news is kept
                del self._seen[name]
        for name, num_ctx in present.items():
            when, known = self._seen.get(name, (asked_at, None))
            self._seen[name] = (max(when, asked_at), num_ctx if num_ctx is not None else known)
        self._ps_at = asked_at if self._ps_at is None else max(self._ps_at, asked_at)

    def _forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._ps_at = None

    async def _load(self, name: str, keep_alive: str | int | None) -> float:
        started = self._clock()
        num_ctx = self.load_num_ctx(name)
        body = {
            "model": name,
            "keep_alive": self._cfg.keep_alive if keep_alive is None else keep_alive,
            "stream": False,
            "options": {"num_ctx": num_ctx},
        }
        timeout = aiohttp.ClientTimeout(
            sock_connect=self._cfg.connect_timeout, sock_read=self._cfg.load_timeout
        )
        try:
            await self._json_reply(
                "POST", "/api/generate", body, timeout, f"the load of {name}", name, loading=True
            )
        except ProviderError as exc:
            self._last_error[name] = exc.message
            self._forget(name)
            raise
        self._last_error.pop(name, None)
        self._seen[name] = (self._clock(), num_ctx)
        return self._clock() - started

    def _load_done(self, name: str, task: asyncio.Task[float]) -> None:
        self._loads.pop(name, None)
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter already got it through the shield

    async def _inspect(self, path: str) -> dict[str, Any]:
        """GET an inspection route: bounded by connect_timeout + inspect_timeout in all."""
        what = f"GET {path}"
        try:
            # The socket limits bound each read; this bounds a host that trickles bytes forever too.
            async with asyncio.timeout(self._cfg.connect_timeout + self._cfg.inspect_timeout):
                return await self._json_reply("GET", path, None, self._inspect_timeout, what)
        except TimeoutError:
            raise ProviderError(
                "timeout",
                f"Ollama at {self.base_url} did not answer {what} within {self._cfg.inspect_timeout:g} s",
            ) from None

    async def _json_reply(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: aiohttp.ClientTimeout,
        what: str,
        model: str | None = None,
        *,
        loading: bool = False,
    ) -> dict[str, Any]:
        """One request whose reply is a JSON object; anything else is a ProviderError."""
        try:
            async with self._request(method, path, body, timeout) as resp:
                status, content = resp.status, await resp.read()
        except aiohttp.ClientError as exc:
            raise transport_error(exc, self.base_url, what) from None
        if status != 200:
            raise reply_error(status, content, what, self.base_url, model=model, loading=loading)
        try:
            data = json.loads(content)
        except (ValueError, RecursionError):  # empty, truncated, or someone else's page
            raise malformed_reply(what, content) from None
        if not isinstance(data, dict):
            raise malformed_reply(what, content)
        return data


class _Retryable(Exception):
    """Wraps an error that may pass if tried again (busy server, dropped connection)."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error
