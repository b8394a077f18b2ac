"""An Ollama server emulator that speaks the documented HTTP API (docs/api.md).

Used by the test suite in-process (``OllamaEmulator(...).start()``) and, for CLI
or browser tests, out of process::

    python -m tests.emulators.ollama --port 11434 [--config models.json]
        [--memory-limit BYTES] [--max-loaded N]

where the config is ``{"models": {"name": {ModelSpec fields}}}``. Faults are
injected per model through ``ModelSpec``; the ``/_emulator/*`` routes expose the
same controls over HTTP (``POST /_emulator/models`` takes ``{"name", "merge",
...ModelSpec fields}``; ``POST /_emulator/server`` takes the server-wide modes:
``proxy_error``, ``memory_limit``, ``max_loaded``, each optional, null clears it).

Faults, each as Ollama (or what stands in front of it) really shows it:

* ``load_delay`` / ``load_error``: a load (an empty generate, or a request for a
  model that is not loaded) takes that long / fails with 500 and that text; the
  texts of several Ollama versions are ``NO_SYSTEM_MEMORY``, ``NO_GPU_FIT`` and
  ``RUNNER_STOPPED`` (``LOAD_ERRORS``).
* ``expire(name)``: Ollama evicts the model once idle (memory pressure, another
  model, ``ollama stop``); the next request loads it again.
* ``memory_limit`` (bytes; ``set_memory_limit``) / ``max_loaded``
  (OLLAMA_MAX_LOADED_MODELS): a load that would take the loaded models' ``size``
  sum over the limit, or their count over ``max_loaded``, first unloads others as
  Ollama's scheduler does: idle ones by shortest keep_alive, then name; with none
  idle it waits for the shortest to finish its requests (``eviction_count``).
  A model larger than the whole limit gets 500 "model requires more system memory
  (X GiB) than is available (Y GiB)" and unloads nothing.
* ``size_vram``: /api/ps shows a partly offloaded model (size_vram < size).
* options.num_ctx: a request whose context window differs from the loaded
  runner's reloads it (``load_count`` rises, ``load_delay`` applies).
* options.num_predict: the reply stops after that many tokens with
  ``done_reason: "length"``.
* ``first_token_delay`` / ``token_delay`` / ``stall_after``: slow or silent models.
* ``error_after``: an ``{"error"}`` line after N chunks (a runner crash mid-reply).
* ``reset_after``: the connection is reset (TCP RST) after N chunks.
* ``garbage_after``: a truncated, malformed NDJSON line after N chunks.
* ``busy_for``: the next N generate/chat requests get 503 ``SERVER_BUSY``, the
  scheduler's queue-full reply.
* ``status_code_error``: every generate/chat gets that (status, JSON error).
* ``raw_error``: generate/chat get (status, content type, body) verbatim, e.g.
  ``PROXY_502``, the HTML page of a proxy whose Ollama is down.
* ``empty_body``: generate/chat answer 200 with an empty body.
* ``pull_stall_after``: a streamed pull goes silent after N progress lines.
* ``reply=""``: a model that answers nothing (one final chunk, no text).
* server-wide ``proxy_error`` (``set_proxy_error``): every ``/api/*`` route,
  /api/tags and /api/ps included, gets that (status, content type, body).
* a host that accepts connections and never answers: ``tests.emulators.hanging``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ._ollama_defaults import default_models
from ._ollama_infer import Inference, Kind
from ._ollama_models import (
    LOAD_ERRORS,
    NO_GPU_FIT,
    NO_SYSTEM_MEMORY,
    PROXY_502,
    RUNNER_STOPPED,
    SERVER_BUSY,
    ModelEntry,
    ModelSpec,
    digest,
    model_key,
    normalize_name,
)
from ._ollama_models import spec_from_fields as spec_from_fields
from ._ollama_sched import Scheduler, check_max_loaded, check_memory_limit
from ._server import Exchange, HTTPEmulator, dump_json

__all__ = [
    "LOAD_ERRORS",
    "NO_GPU_FIT",
    "NO_SYSTEM_MEMORY",
    "PROXY_502",
    "RUNNER_STOPPED",
    "SERVER_BUSY",
    "ModelSpec",
    "OllamaEmulator",
    "RecordedRequest",
    "default_models",
    "main",
]

VERSION = "0.12.0"
PULL_NOT_FOUND = "pull model manifest: file does not exist"  # registry 404, via PullModel
_NDJSON = "application/x-ndjson"


class RecordedRequest(NamedTuple):
    method: str
    path: str
    body: Any  # parsed JSON, the raw text if it was not JSON, None if empty


def _go_json_error(raw: bytes, struct: str) -> str | None:
    """The message gin's ShouldBindJSON gives for a body that is not a JSON object."""
    if not raw.strip():
        return "missing request body"  # io.EOF
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc.rstrip()):
            return "unexpected EOF"
        return f"invalid character '{exc.doc[exc.pos]}' looking for beginning of value"
    if isinstance(value, dict):
        return None
    kind = {list: "array", str: "string", bool: "bool"}.get(type(value), "number")
    return f"json: cannot unmarshal {kind} into Go value of type api.{struct}"


class OllamaEmulator(HTTPEmulator):
    """Emulated Ollama server; ``models=None`` serves ``default_models()``."""

    label = "ollama emulator"

    def __init__(
        self,
        models: Mapping[str, ModelSpec] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        memory_limit: int | None = None,
        max_loaded: int | None = None,
    ) -> None:
        super().__init__(port, host)
        self._lock = threading.Lock()
        self._initial = dict(default_models() if models is None else models)
        self._initial_limits = (memory_limit, max_loaded)
        self._models: dict[str, ModelEntry] = {}
        self._requests: list[RecordedRequest] = []
        self._proxy_error: tuple[int, str, str] | None = None
        self._sched = Scheduler(
            lambda s: s <= 0 or not self._stopping.wait(s), memory_limit=memory_limit, max_loaded=max_loaded
        )
        self._infer = Inference(self._sched, self._installed, self._next_reply, self._take_busy)
        self.reset()
        get, post = ("GET", "HEAD"), ("POST",)
        self._routes: dict[str, tuple[tuple[str, ...], Callable[[Exchange], None]]] = {
            "/": (get, lambda ex: ex.send_text(200, "Ollama is running")),
            "/api/version": (get, lambda ex: ex.send_json(200, {"version": VERSION})),
            "/api/tags": (get, self._tags),
            "/api/ps": (("GET",), lambda ex: ex.send_json(200, {"models": self._sched.ps_json()})),
            "/api/show": (post, self._show),
            "/api/pull": (post, self._pull),
            "/api/generate": (post, self._inference("generate", "GenerateRequest")),
            "/api/chat": (post, self._inference("chat", "ChatRequest")),
            "/_emulator/models": (post, self._control_set_model),
            "/_emulator/server": (post, self._control_server),
            "/_emulator/state": (("GET",), lambda ex: ex.send_json(200, self.state())),
            "/_emulator/reset": (post, self._control_reset),
        }

    # -- public API (thread-safe) ------------------------------------------------

    def set_model(self, name: str, spec: ModelSpec) -> None:
        # Copy the queue so popping replies never mutates the caller's list.
        spec = dataclasses.replace(spec, replies=list(spec.replies))
        with self._lock:
            entry = self._models.get(model_key(name))
            if entry is None:
                self._models[model_key(name)] = ModelEntry(normalize_name(name), spec)
            else:
                entry.spec = spec  # a loaded runner sees the new behaviour at once

    def update_model(self, name: str, **fields: Any) -> None:
        with self._lock:
            entry = self._models[model_key(name)]
        self.set_model(name, spec_from_fields(fields, entry.spec))

    def model(self, name: str) -> ModelSpec:
        with self._lock:
            return self._models[model_key(name)].spec

    def load_count(self, name: str) -> int:
        return self._sched.load_count(model_key(name))

    def loaded_models(self) -> list[str]:
        return self._sched.loaded()

    def ps_json(self) -> list[dict[str, object]]:
        """What /api/ps would answer now."""
        return self._sched.ps_json()

    def expire(self, name: str) -> None:
        self._sched.expire(model_key(name))

    def set_memory_limit(self, limit: int | None) -> None:
        """Bytes the loaded models' sizes may sum to (None: unlimited); applies from the next load."""
        self._sched.set_memory_limit(limit)

    def set_max_loaded(self, count: int | None) -> None:
        """OLLAMA_MAX_LOADED_MODELS (None: unlimited); applies from the next load."""
        self._sched.set_max_loaded(count)

    def eviction_count(self, name: str) -> int:
        """How often the model was unloaded to make room for another one."""
        return self._sched.eviction_count(model_key(name))

    def set_proxy_error(self, error: tuple[int, str, str] | None) -> None:
        """Answer every /api/* route with (status, content type, body), as a proxy whose Ollama is down."""
        with self._lock:
            self._proxy_error = error

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Back to the constructor's models and limits: nothing loaded, counts and requests cleared."""
        self._sched.reset()
        memory_limit, max_loaded = self._initial_limits
        self._sched.set_memory_limit(memory_limit)
        self._sched.set_max_loaded(max_loaded)
        with self._lock:
            self._models.clear()
            self._requests.clear()
            self._proxy_error = None
        for name, spec in self._initial.items():
            self.set_model(name, spec)

    def state(self) -> dict[str, Any]:
        with self._lock:
            models = {e.name: dataclasses.asdict(e.spec) for e in self._models.values()}
            request_count = len(self._requests)
        return {
            "evictions": self._sched.evictions(),
            "load_counts": self._sched.load_counts(),
            "loaded": self.loaded_models(),
            "max_loaded": self._sched.max_loaded,
            "memory_limit": self._sched.memory_limit,
            "models": models,
            "request_count": request_count,
        }

    # -- plumbing ------------------------------------------------------------------

    def _installed(self, name: str) -> ModelEntry | None:
        with self._lock:
            entry = self._models.get(model_key(name))
        return entry if entry is not None and entry.spec.installed else None

    def _take_busy(self, key: str) -> bool:
        with self._lock:
            entry = self._models[key]
            if entry.spec.busy_for <= 0:
                return False
            entry.spec = dataclasses.replace(entry.spec, busy_for=entry.spec.busy_for - 1)
            return True

    def _next_reply(self, key: str) -> str:
        with self._lock:
            spec = self._models[key].spec
            return spec.replies.pop(0) if spec.replies else spec.reply

    def handle(self, ex: Exchange) -> None:
        if not ex.path.startswith("/_emulator/"):
            with self._lock:
                self._requests.append(RecordedRequest(ex.method, ex.path, _loose_json(ex.body)))
        with self._lock:
            proxy_error = self._proxy_error
        route = self._routes.get(ex.path)
        if proxy_error is not None and ex.path.startswith("/api/"):
            status, content_type, text = proxy_error
            ex.send(status, text.encode(), content_type)
        elif route is None:
            ex.send_text(404, "404 page not found")  # gin's default
        elif ex.method not in route[0]:
            ex.send_text(405, "405 method not allowed")  # HandleMethodNotAllowed = true
        else:
            route[1](ex)

    def _body(self, ex: Exchange, struct: str) -> dict[str, Any] | None:
        error = _go_json_error(ex.body, struct)
        if error is not None:
            ex.send_json(400, {"error": error})
            return None
        body: dict[str, Any] = json.loads(ex.body)
        return body

    def _inference(self, kind: Kind, struct: str) -> Callable[[Exchange], None]:
        def route(ex: Exchange) -> None:
            body = self._body(ex, struct)
            if body is not None:
                self._infer.handle(ex, body, kind)

        return route

    # -- routes --------------------------------------------------------------------

    def _tags(self, ex: Exchange) -> None:
        with self._lock:
            entries = [e for e in self._models.values() if e.spec.installed]
        entries.sort(key=lambda e: e.modified_at, reverse=True)  # newest first, as ListHandler
        ex.send_json(200, {"models": [e.tags_json() for e in entries]})

    def _show(self, ex: Exchange) -> None:
        body = self._body(ex, "ShowRequest")
        if body is None:
            return
        name = body.get("model") or body.get("name")
        if not name:
            ex.send_json(400, {"error": "model is required"})
        elif (entry := self._installed(str(name))) is None:
            ex.send_json(404, {"error": f"model '{name}' not found"})
        else:
            ex.send_json(200, entry.show_json())

    def _pull(self, ex: Exchange) -> None:
        body = self._body(ex, "PullRequest")
        if body is None:
            return
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            ex.send_json(400, {"error": "invalid model name"})
            return
        lines = self._pull_progress(name)
        if body.get("stream") is False:  # waitForStream: only the outcome
            failed = "error" in lines[-1]
            ex.send_json(500 if failed else 200, lines[-1] if failed else {"status": "success"})
            return
        stall_after = self.model(name).pull_stall_after if self._installed_or_known(name) else None
        ex.begin_stream(_NDJSON)  # errors arrive as a line after "pulling manifest"
        for i, line in enumerate(lines):
            if stall_after is not None and i >= stall_after:
                ex.hold_open()  # a registry download that stopped moving
                return
            ex.write_chunk(dump_json(line) + b"\n")
        ex.end_stream()

    def _installed_or_known(self, name: str) -> bool:
        with self._lock:
            return model_key(name) in self._models

    def _pull_progress(self, name: str) -> list[dict[str, Any]]:
        """The progress lines PullModel emits, installing the model on success."""
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        with self._lock:
            entry = self._models.get(model_key(name))
            if entry is None or not entry.spec.pullable:
                return [*lines, {"error": PULL_NOT_FOUND}]
            entry.spec = dataclasses.replace(entry.spec, installed=True)
            size = entry.spec.size
        for layer, total in (("model", size), ("template", 1_429), ("params", 96)):
            blob = digest(f"{name}/{layer}")
            for done in (0, total // 3, 2 * total // 3, total):
                line = {"status": f"pulling {blob[:12]}", "digest": f"sha256:{blob}", "total": total}
                if done:  # "completed" is omitempty in api.ProgressResponse
                    line["completed"] = done
                lines.append(line)
        statuses = ("verifying sha256 digest", "writing manifest", "success")
        return lines + [{"status": s} for s in statuses]

    def _control_reset(self, ex: Exchange) -> None:
        self.reset()
        ex.send_json(200, {})

    def _control_server(self, ex: Exchange) -> None:
        body = self._body(ex, "EmulatorServer")
        if body is None:
            return
        unknown = set(body) - {"proxy_error", "memory_limit", "max_loaded"}
        if unknown:
            ex.send_json(400, {"error": f"unknown server fields: {sorted(unknown)}"})
            return
        # Check every field before applying any; only the fields given change.
        error = body.get("proxy_error")
        try:
            proxy_error = None if error is None else (int(error[0]), str(error[1]), str(error[2]))
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            ex.send_json(400, {"error": f"proxy_error: expected [status, content type, body] ({exc})"})
            return
        try:
            memory_limit = check_memory_limit(body.get("memory_limit"))
            max_loaded = check_max_loaded(body.get("max_loaded"))
        except ValueError as exc:
            ex.send_json(400, {"error": str(exc)})
            return
        if "proxy_error" in body:
            self.set_proxy_error(proxy_error)
        if "memory_limit" in body:
            self.set_memory_limit(memory_limit)
        if "max_loaded" in body:
            self.set_max_loaded(max_loaded)
        with self._lock:
            current = self._proxy_error
        limits = {"memory_limit": self._sched.memory_limit, "max_loaded": self._sched.max_loaded}
        ex.send_json(200, {"proxy_error": current, **limits})

    def _control_set_model(self, ex: Exchange) -> None:
        body = self._body(ex, "EmulatorModel")
        if body is None:
            return
        fields = dict(body)
        name, merge = fields.pop("name", None), bool(fields.pop("merge", False))
        try:
            if not isinstance(name, str) or not name:
                raise ValueError("name is required")
            if merge:
                self.update_model(name, **fields)
            else:
                self.set_model(name, spec_from_fields(fields))
        except (ValueError, TypeError, KeyError) as exc:
            ex.send_json(400, {"error": str(exc)})
            return
        ex.send_json(200, {"name": normalize_name(name)})


def _loose_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Ollama emulator until killed.")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help='JSON file: {"models": {"name": {spec fields}}}')
    parser.add_argument("--memory-limit", type=int, help="bytes the loaded models may take")
    parser.add_argument("--max-loaded", type=int, help="OLLAMA_MAX_LOADED_MODELS")
    args = parser.parse_args(argv)
    models = None
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            config = json.load(fh)
        models = {n: spec_from_fields(f) for n, f in config.get("models", {}).items()}
    emulator = OllamaEmulator(
        models, port=args.port, host=args.host, memory_limit=args.memory_limit, max_loaded=args.max_loaded
    )
    emulator.serve_until_killed()


if __name__ == "__main__":
    main()
