"""Shared HTTP plumbing for the protocol emulators.

Both emulators need the same unusual server behaviour, so it lives here:

* every accepted socket gets TCP_NODELAY, otherwise Nagle's algorithm plus the
  client's delayed ACK holds each small write back by ~40 ms;
* HTTP/1.1 keep-alive, Content-Length for whole replies and chunked transfer
  encoding for streams, each chunk sent with one unbuffered ``sendall``;
* ``stop()`` really tears everything down (it wakes stalled handlers, shuts the
  open connections and joins their threads) so pytest's ``filterwarnings=error``
  never sees an unclosed-socket ResourceWarning.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

JSON_TYPE = "application/json; charset=utf-8"
_CLIENT_GONE = (ConnectionError, TimeoutError)


def dump_json(obj: Any) -> bytes:
    """Encode compactly, as Go's encoding/json does."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Exchange:
    """One request and its reply, handed to an emulator's route function."""

    def __init__(self, handler: _Handler, stopping: threading.Event) -> None:
        self._h = handler
        self._stopping = stopping
        url = urlsplit(handler.path)
        self.method: str = handler.command
        self.path: str = url.path
        self.query: str = url.query
        self.headers: dict[str, str] = {k.lower(): v for k, v in handler.headers.items()}
        self.body: bytes = self._read_body()
        self.headers_sent = False
        self._stream_headers: tuple[int, str] | None = None
        self._streaming = False

    def _read_body(self) -> bytes:
        rfile = self._h.rfile
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int(rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(rfile.read(size))
                rfile.readline()
            while rfile.readline().strip():  # trailers, then the blank line
                pass
            return b"".join(parts)
        return rfile.read(int(self.headers.get("content-length", "0") or "0"))

    # -- whole replies ---------------------------------------------------------

    def send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete reply with Content-Length (no body for HEAD)."""
        assert not self.headers_sent, "reply already started"
        h = self._h
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        self.headers_sent = True
        if self.method != "HEAD":
            h.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send(status, dump_json(obj), JSON_TYPE, headers)

    def send_text(self, status: int, text: str) -> None:
        self.send(status, text.encode(), "text/plain; charset=utf-8")

    # -- streams ---------------------------------------------------------------

    def begin_stream(self, content_type: str, status: int = 200) -> None:
        """Declare a chunked reply; headers go out with the first chunk.

        Deferring the headers mirrors Go's net/http: a model that stalls before
        its first token leaves the client waiting for headers, not for a body.
        """
        self._stream_headers = (status, content_type)

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk immediately; raises ConnectionError if the client left."""
        if self._stream_headers is not None:
            status, content_type = self._stream_headers
            self._stream_headers = None
            h = self._h
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            self.headers_sent = self._streaming = True
        assert self._streaming, "begin_stream() first"
        if data:  # an empty chunk would terminate the body
            self._h.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self._h.wfile.flush()

    def end_stream(self) -> None:
        if self._stream_headers is not None:
            self.write_chunk(b"")  # a stream with no chunks still needs headers
        if self._streaming:
            self._h.wfile.write(b"0\r\n\r\n")
            self._h.wfile.flush()
            self._streaming = False

    def abandon(self) -> None:
        """Drop the connection after this exchange (e.g. an unfinished stream)."""
        self._h.close_connection = True

    def reset_connection(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0, then close), as a crashed peer does."""
        h, sock = self._h, self._h.connection
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference on the socket; only the last close really closes (and resets).
        h.rfile.close()
        sock.close()
        h.close_connection = True
        self._streaming, self._stream_headers = False, None
        self.headers_sent = True

    @property
    def unfinished(self) -> bool:
        return self._streaming or self._stream_headers is not None

    # -- timing ----------------------------------------------------------------

    def sleep(self, seconds: float) -> bool:
        """Sleep, but wake early (returning False) when the emulator stops."""
        return seconds <= 0 or not self._stopping.wait(seconds)

    def client_gone(self) -> bool:
        sock = self._h.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def hold_open(self) -> None:
        """Keep the connection open, sending nothing, until the client leaves or we stop."""
        while not self._stopping.wait(0.02):
            if self.client_gone():
                break
        self.abandon()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; tests inspect emulator.requests instead

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        ex = Exchange(self, emulator._stopping)
        try:
            emulator.handle(ex)
        except _CLIENT_GONE:
            self.close_connection = True
            return
        except Exception as exc:  # a bug in an emulator must not hang the client
            self.close_connection = True
            if not ex.headers_sent:
                ex.send_json(500, {"error": f"emulator bug: {exc!r}"})
            raise
        if ex.unfinished:
            self.close_connection = True

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: fifty clients connecting at once would see resets
    # that Ollama's Go server (backlog somaxconn) never gives them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: HTTPEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup that
        # can stall for seconds on hosts without DNS; the emulators never need it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _CLIENT_GONE):  # a client hanging up is normal
            super().handle_error(request, client_address)


class HTTPEmulator:
    """Background HTTP server; subclasses implement ``handle``."""

    label = "emulator"

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self.connections = 0
        """TCP connections accepted so far (a client that keeps its connections alive opens few)."""

    def handle(self, ex: Exchange) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def url(self) -> str:
        return self.base_url

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{self.label}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()  # wakes delays and stalled streams
        server.shutdown()
        with self._conns_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:  # wakes handlers blocked reading the next keep-alive request
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, worker in conns:
            worker.join(timeout=5)
        server.server_close()
        thread.join(timeout=5)

    def _track(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns[sock] = threading.current_thread()
            self.connections += 1
        if self._stopping.is_set():  # accepted while stopping: do not serve it
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _untrack(self, sock: socket.socket) -> None:
        with self._conns_lock:
            self._conns.pop(sock, None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve_until_killed(self) -> None:
        """Run in the foreground (for ``python -m``) until SIGINT or SIGTERM."""
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        print(f"{self.label} listening on {self.url}", flush=True)
        try:
            while not done.wait(0.2):
                pass
        finally:
            self.stop()
