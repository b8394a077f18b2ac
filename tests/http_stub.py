"""A real HTTP server on loopback whose every reply comes from a function: faults at the wire.

The function takes an httpx.Request and returns an httpx.Response (httpx only as the vocabulary
of requests and replies); the server sends that reply over a real socket, so the client under
test parses it with its own HTTP stack.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import httpx
from aiohttp import web

Handler = Callable[[httpx.Request], httpx.Response]


class StubServer:
    """`async with StubServer(handler) as server`: `server.url` answers with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> StubServer:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        asked = httpx.Request(request.method, str(request.url), content=await request.read())
        reply = self.handler(asked)
        content_type = reply.headers.get("content-type", "application/x-ndjson")
        return web.Response(
            status=reply.status_code, body=reply.content, headers={"Content-Type": content_type}
        )
