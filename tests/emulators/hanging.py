"""A host that accepts TCP connections, reads whatever is sent, and never answers.

It stands for a wedged Ollama, or a firewall or proxy that black-holes requests: the
connect succeeds, so only a read limit can end the wait::

    with HangingHost() as host:
        client = OllamaClient(OllamaConfig(base_url=host.url, inspect_timeout=0.3))

``stop()`` closes every connection cleanly (no ResourceWarning) and joins its thread.
"""

from __future__ import annotations

import selectors
import socket
import threading
from contextlib import suppress
from types import TracebackType
from typing import Self


class HangingHost:
    """Listens on loopback; every connection is accepted and read but never answered."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.accepted = 0
        self.received = b""  # everything clients sent, for asserting what reached the host

    @property
    def url(self) -> str:
        if self._listener is None:
            raise RuntimeError("hanging host not started")
        return f"http://{self._host}:{self._listener.getsockname()[1]}"

    def start(self) -> Self:
        if self._listener is not None:
            return self
        self._stopping.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name="hanging-host", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=5)
        self._thread = None
        self._listener = None  # closed by the serving thread

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=0.02):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is listener:
                        with suppress(BlockingIOError):
                            conn, _ = listener.accept()
                            conn.setblocking(False)
                            sel.register(conn, selectors.EVENT_READ)
                            with self._lock:
                                self.accepted += 1
                        continue
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if data:
                        with self._lock:
                            self.received += data
                    else:  # the client gave up: let it go
                        sel.unregister(sock)
                        sock.close()
        finally:
            for key in list(sel.get_map().values()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                sel.unregister(sock)
                sock.close()
            sel.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
