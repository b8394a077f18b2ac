"""POST /api/generate and POST /api/chat for the Ollama emulator.

Follows GenerateHandler/ChatHandler in ollama/ollama v0.12 server/routes.go:
validation order, status codes, the load/unload shortcuts for an empty prompt,
NDJSON streaming, and errors that arrive mid-stream as an ``{"error"}`` line
(status already 200) versus a 500 when the reply is not streamed. A positive
``options.num_predict`` ends the reply after that many tokens with
``done_reason: "length"``, as the runner does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ._ollama_models import SERVER_BUSY, ModelEntry, ModelSpec, model_key, parse_keep_alive, utc_timestamp
from ._ollama_sched import LoadResult, Scheduler
from ._server import Exchange, dump_json
from ._text import count_tokens, split_tokens

Kind = Literal["generate", "chat"]
_GARBAGE = b'{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assis'  # cut mid-line
_STRUCT = {"generate": "GenerateRequest", "chat": "ChatRequest"}


class BadRequest(Exception):
    """A request Ollama rejects before doing any work: (status, message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class _Request:
    kind: Kind
    model: str  # as the client spelled it; Ollama echoes it back unchanged
    prompt_text: str  # prompt, or all message contents; "" means load/unload
    stream: bool
    keep_alive: float
    num_ctx: int | None
    num_predict: int | None  # positive: the most tokens to generate
    format_error: str | None
    started: float


def _typed(body: dict[str, Any], kind: Kind, name: str, types: tuple[type, ...], go_type: str) -> Any:
    value = body.get(name)
    if value is not None and type(value) not in types:  # JSON gives exact types
        got = {str: "string", bool: "bool", list: "array", dict: "object"}.get(type(value), "number")
        raise BadRequest(
            400, f"json: cannot unmarshal {got} into Go struct field {_STRUCT[kind]}.{name} of type {go_type}"
        )
    return value


def parse_request(body: dict[str, Any], kind: Kind) -> _Request:
    started = time.monotonic()
    model = _typed(body, kind, "model", (str,), "string") or ""
    stream = _typed(body, kind, "stream", (bool,), "bool")
    options = _typed(body, kind, "options", (dict,), "map[string]interface {}") or {}
    if kind == "generate":
        text = (_typed(body, kind, "prompt", (str,), "string") or "") + (
            _typed(body, kind, "system", (str,), "string") or ""
        )
    else:
        messages = _typed(body, kind, "messages", (list,), "[]api.Message") or []
        text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        text = text or ("\n" if messages else "")  # non-empty messages never mean "load"
    try:
        keep_alive = parse_keep_alive(body.get("keep_alive"))
    except ValueError as exc:
        raise BadRequest(400, str(exc)) from None
    fmt = body.get("format")
    format_error = None  # llm/server.go rejects it only when generation starts
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        format_error = (
            f'invalid format: {dump_json(fmt).decode()}; expected "json" or a valid JSON Schema object'
        )
    num_ctx = options.get("num_ctx")
    num_predict = options.get("num_predict")
    return _Request(
        kind,
        model,
        text,
        stream is not False,
        keep_alive,
        num_ctx if isinstance(num_ctx, int) else None,
        num_predict if isinstance(num_predict, int) and num_predict > 0 else None,
        format_error,
        started,
    )


class Inference:
    """Serves generate/chat against the model table and the scheduler."""

    def __init__(
        self,
        scheduler: Scheduler,
        lookup: Callable[[str], ModelEntry | None],
        next_reply: Callable[[str], str],
        take_busy: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self._sched = scheduler
        self._lookup = lookup  # installed models only
        self._next_reply = next_reply
        self._take_busy = take_busy  # consumes one of a spec's busy_for replies

    def handle(self, ex: Exchange, body: dict[str, Any], kind: Kind) -> None:
        try:
            req = parse_request(body, kind)
            entry = self._resolve(req)
        except BadRequest as exc:
            ex.send_json(exc.status, {"error": exc.message})
            return
        key = model_key(req.model)
        if entry.spec.raw_error is not None:
            status, content_type, text = entry.spec.raw_error
            ex.send(status, text.encode(), content_type)
        elif self._take_busy(key):
            ex.send_json(503, {"error": SERVER_BUSY})  # handleScheduleError for ErrMaxQueue
        elif entry.spec.status_code_error is not None:
            status, message = entry.spec.status_code_error
            ex.send_json(status, {"error": message})
        elif not req.prompt_text and req.keep_alive == 0:
            self._sched.expire(key)
            ex.send_json(200, self._shortcut(req, "unload"))
        else:
            self._run(ex, req, key, entry)

    def _resolve(self, req: _Request) -> ModelEntry:
        if not req.model and req.kind == "chat":
            raise BadRequest(400, "model is required")
        entry = self._lookup(req.model) if req.model else None
        if entry is None:  # generate reports an empty name as not found too
            raise BadRequest(404, f"model '{req.model}' not found")
        return entry

    def _run(self, ex: Exchange, req: _Request, key: str, entry: ModelEntry) -> None:
        load = self._sched.acquire(key, entry, req.keep_alive, req.num_ctx)
        if load.error is not None:  # handleScheduleError: anything unexpected is a 500
            ex.send_json(500, {"error": load.error})
            return
        try:
            if entry.spec.empty_body:
                ex.send(200, b"", "application/json; charset=utf-8")
            elif not req.prompt_text:
                ex.send_json(200, self._shortcut(req, "load"))
            elif req.stream:
                self._stream(ex, req, entry.spec, load, self._next_reply(key))
            else:
                self._whole(ex, req, entry.spec, load, self._next_reply(key))
        finally:
            self._sched.release(key)

    # -- replies ---------------------------------------------------------------

    def _shortcut(self, req: _Request, reason: str) -> dict[str, Any]:
        reply = self._chunk(req, "", done=True)
        reply["done_reason"] = reason
        return reply

    @staticmethod
    def _chunk(req: _Request, piece: str, done: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"model": req.model, "created_at": utc_timestamp()}
        if req.kind == "generate":
            out["response"] = piece
        else:
            out["message"] = {"role": "assistant", "content": piece}
        out["done"] = done
        return out

    def _final(
        self, req: _Request, text: str, load: LoadResult, first_token: float, eval_count: int, reason: str
    ) -> dict[str, Any]:
        now = time.monotonic()
        final = self._chunk(req, text, done=True)
        final["done_reason"] = reason
        prompt_count = count_tokens(req.prompt_text)
        if req.kind == "generate":  # the deprecated conversation "context" tokens
            final["context"] = list(range(1, prompt_count + eval_count + 1))
        final.update(
            {
                "total_duration": _ns(now - req.started),
                "load_duration": _ns(load.load_seconds),
                "prompt_eval_count": prompt_count,
                "prompt_eval_duration": _ns(first_token - req.started - load.load_seconds),
                "eval_count": max(1, eval_count),
                "eval_duration": _ns(now - first_token),
            }
        )
        return final

    def _timeline(
        self, ex: Exchange, spec: ModelSpec, pieces: list[str], format_error: str | None
    ) -> Iterator[tuple[str, str]]:
        """Yield ("piece"|"error"|"stall"|"reset"|"garbage"|"done", text) with the spec's delays.

        ``pieces`` is already cut to num_predict; "done" carries the done_reason.
        """
        error_at = 0 if format_error else spec.error_after
        for i in range(len(pieces) + 1):
            delay = spec.first_token_delay if i == 0 else spec.token_delay
            if not ex.sleep(delay if i < len(pieces) or i == 0 else 0.0):
                yield "stall", ""  # stopping: give up quietly
                return
            if error_at is not None and i >= error_at:
                yield "error", format_error or spec.error_message
                return
            if spec.stall_after is not None and i >= spec.stall_after:
                yield "stall", ""
                return
            if spec.reset_after is not None and i >= spec.reset_after:
                yield "reset", ""
                return
            if spec.garbage_after is not None and i >= spec.garbage_after:
                yield "garbage", ""
                return
            yield ("piece", pieces[i]) if i < len(pieces) else ("done", "")

    @staticmethod
    def _limit(req: _Request, text: str) -> tuple[list[str], str]:
        """The pieces to send and the done_reason: "length" when num_predict cuts the reply."""
        pieces = split_tokens(text)
        if req.num_predict is not None and len(pieces) > req.num_predict:
            return pieces[: req.num_predict], "length"
        return pieces, "stop"

    def _stream(self, ex: Exchange, req: _Request, spec: ModelSpec, load: LoadResult, text: str) -> None:
        ex.begin_stream("application/x-ndjson")
        (pieces, reason), sent, first_token = self._limit(req, text), 0, time.monotonic()
        for event, value in self._timeline(ex, spec, pieces, req.format_error):
            if sent == 0:
                first_token = time.monotonic()
            if event == "piece":
                ex.write_chunk(dump_json(self._chunk(req, value, done=False)) + b"\n")
                sent += 1
            elif event == "error":
                ex.write_chunk(dump_json({"error": value}) + b"\n")
            elif event == "done":
                final = self._final(req, "", load, first_token, sent, reason)
                ex.write_chunk(dump_json(final) + b"\n")
            elif event == "garbage":
                ex.write_chunk(_GARBAGE + b"\n")
            elif event == "reset":
                ex.reset_connection()
                return
            else:
                ex.hold_open()
                return
        ex.end_stream()

    def _whole(self, ex: Exchange, req: _Request, spec: ModelSpec, load: LoadResult, text: str) -> None:
        (pieces, reason), sent, first_token = self._limit(req, text), 0, time.monotonic()
        for event, value in self._timeline(ex, spec, pieces, req.format_error):
            if sent == 0:
                first_token = time.monotonic()
            if event == "piece":
                sent += 1
            elif event == "error":
                ex.send_json(500, {"error": value})
            elif event == "done":
                ex.send_json(200, self._final(req, "".join(pieces), load, first_token, sent, reason))
            elif event == "garbage":
                ex.send(200, _GARBAGE, "application/json; charset=utf-8")
            elif event == "reset":
                ex.reset_connection()
            else:
                ex.hold_open()


def _ns(seconds: float) -> int:
    """Durations are integer nanoseconds; Ollama omits zeros, so keep them positive."""
    return max(1, int(seconds * 1e9))
