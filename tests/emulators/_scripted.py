"""What the cloud emulators share: behaviour held in one dataclass, changed live, and a request log.

Each emulator declares its behaviour as a dataclass (reply, replies, faults...) whose fields can
be changed while it serves, from a test (``configure``) or over HTTP, and reset between tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
from typing import Any, Generic, Protocol, TypeVar

from ._server import HTTPEmulator


class _Scripted(Protocol):
    replies: list[str]


ConfigT = TypeVar("ConfigT", bound=_Scripted)
RequestT = TypeVar("RequestT")


def coerce_fields(config_type: type[Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Check field names against `config_type` and copy lists (never pop from a caller's list)."""
    unknown = set(fields) - {f.name for f in dataclasses.fields(config_type)}
    if unknown:
        raise ValueError(f"unknown {config_type.__name__} fields: {sorted(unknown)}")
    for name in ("replies", "models"):
        if name in fields:
            fields[name] = list(fields[name])
    return fields


class ScriptedEmulator(HTTPEmulator, Generic[ConfigT, RequestT]):
    """An HTTP emulator whose behaviour is a `ConfigT` and which records `RequestT`s."""

    def __init__(self, config: ConfigT, port: int, host: str) -> None:
        super().__init__(port, host)
        self._lock = threading.Lock()
        self._config = config
        self._initial = dataclasses.replace(config, replies=list(config.replies))
        self._requests: list[RequestT] = []
        self._failures = 0

    def _coerce(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise `configure` fields (JSON sends lists where we keep tuples)."""
        raise NotImplementedError

    @property
    def config(self) -> ConfigT:
        with self._lock:
            return self._config

    def configure(self, **fields: Any) -> None:
        """Change behaviour; also restarts the fail_times count."""
        with self._lock:
            self._config = dataclasses.replace(self._config, **self._coerce(fields))
            self._failures = 0

    def reset(self) -> None:
        with self._lock:
            self._config = dataclasses.replace(self._initial, replies=list(self._initial.replies))
            self._requests.clear()
            self._failures = 0

    @property
    def requests(self) -> list[RequestT]:
        with self._lock:
            return list(self._requests)


def serve_main(
    emulator: type[ScriptedEmulator[Any, Any]], name: str, port: int, argv: list[str] | None
) -> None:
    """`python -m tests.emulators.X [--port N] [--config fields.json]`: serve until killed."""
    parser = argparse.ArgumentParser(description=f"Serve the {name} emulator until killed.")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help="JSON file with the emulator's config fields")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            fields = json.load(fh)
    emulator(port=args.port, host=args.host, **fields).serve_until_killed()
