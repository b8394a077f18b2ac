"""An OpenAI-compatible Chat Completions emulator, standing in for the cloud.

Speaks ``POST /v1/chat/completions`` (whole replies and SSE streams, including
the ``stream_options.include_usage`` usage chunk) and ``GET /v1/models`` with
OpenAI's error envelope ``{"error": {"message", "type", "param", "code"}}``.
Faults: a wrong key (401 ``invalid_api_key``), any status with OpenAI's body
(``status_error``, e.g. 429 ``rate_limit_exceeded`` or 500), ``retry-after`` /
``retry-after-ms`` headers, a ``hang``, slow answers, and any ``reply`` text
(one that fails validation, say)::

    python -m tests.emulators.openai_compat --port 8090

``POST /_emulator/config`` takes the same fields as ``configure()``.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._ollama_defaults import MERMAID_REPLY
from ._scripted import ScriptedEmulator, coerce_fields, serve_main
from ._server import Exchange, dump_json
from ._text import count_tokens, split_tokens

__all__ = ["OpenAIConfig", "OpenAIEmulator", "RecordedRequest", "main"]

# Error type and code OpenAI sends with each status (message comes from the test).
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_DEFAULT_FAILURE = (500, "The server had an error while processing your request. Sorry about that!")


@dataclass
class OpenAIConfig:
    """Behaviour of the emulated endpoint. Every field has a default."""

    reply: str = MERMAID_REPLY
    replies: list[str] = field(default_factory=list)  # popped per completion, then `reply`
    status_error: tuple[int, str] | None = None  # (status, message) for failing requests
    fail_times: int = 0  # >0: only the first N completions fail (then they succeed)
    delay: float = 0.0  # seconds before answering
    token_delay: float = 0.0  # seconds between streamed chunks
    api_key: str | None = None  # when set, "Authorization: Bearer <api_key>" is required
    retry_after_ms: int | None = None  # sent as retry-after-ms on errors (the SDK obeys it)
    retry_after: str | None = None  # sent as retry-after on errors (seconds or an HTTP date)
    hang: bool = False  # accept a completion, then send nothing until the client leaves
    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4o"])


def _coerce(fields: dict[str, Any]) -> dict[str, Any]:
    coerce_fields(OpenAIConfig, fields)
    if fields.get("status_error") is not None:
        status, message = fields["status_error"]  # JSON sends [status, message]
        fields["status_error"] = (int(status), str(message))
    return fields


class RecordedRequest(NamedTuple):
    method: str
    path: str
    body: Any
    headers: dict[str, str]  # lower-cased names, e.g. "authorization"


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    kind, code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class OpenAIEmulator(ScriptedEmulator[OpenAIConfig, RecordedRequest]):
    label = "openai emulator"

    def __init__(
        self, reply: str = MERMAID_REPLY, *, port: int = 0, host: str = "127.0.0.1", **fields: Any
    ) -> None:
        super().__init__(OpenAIConfig(reply=reply, **_coerce(fields)), port, host)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def _coerce(self, fields: dict[str, Any]) -> dict[str, Any]:
        return _coerce(fields)

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        route = (ex.method, ex.path.rstrip("/"))
        if ex.path.startswith("/_emulator/"):
            self._control(ex)
            return
        try:
            body = json.loads(ex.body) if ex.body.strip() else None
        except ValueError:
            body = ex.body.decode(errors="replace")
        with self._lock:
            self._requests.append(RecordedRequest(ex.method, ex.path, body, dict(ex.headers)))
        if route == ("POST", "/v1/chat/completions"):
            self._chat(ex, body)
        elif route == ("GET", "/v1/models"):
            self._models(ex)
        else:
            body = error_body(404, f"Invalid URL ({ex.method} {ex.path})")
            body["error"]["code"] = None  # unlike a 404 for an unknown model
            ex.send_json(404, body)

    def _refusal(self, ex: Exchange) -> tuple[int, str] | None:
        """Auth and injected failures, checked in the order OpenAI would hit them."""
        config = self.config
        auth = ex.headers.get("authorization", "")
        if config.api_key is not None and not auth:
            return 401, (
                "You didn't provide an API key. You need to provide your API key in "
                "an Authorization header using Bearer auth (i.e. Authorization: "
                "Bearer YOUR_KEY)."
            )
        if config.api_key is not None and auth != f"Bearer {config.api_key}":
            shown = auth.removeprefix("Bearer ")
            return 401, (
                f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}. You can "
                "find your API key at https://platform.openai.com/account/api-keys."
            )
        with self._lock:
            failing = (
                self._failures < config.fail_times
                if config.fail_times > 0
                else config.status_error is not None
            )
            if failing:
                self._failures += 1
                return config.status_error or _DEFAULT_FAILURE
        return None

    def _send_error(self, ex: Exchange, status: int, message: str, param: str | None = None) -> None:
        config = self.config
        headers: dict[str, str] = {}
        if config.retry_after_ms is not None:
            headers["retry-after-ms"] = str(config.retry_after_ms)
        if config.retry_after is not None:
            headers["retry-after"] = config.retry_after
        ex.send_json(status, error_body(status, message, param), headers or None)

    def _chat(self, ex: Exchange, body: Any) -> None:
        if not ex.sleep(self.config.delay):
            return
        if not isinstance(body, dict):
            self._send_error(
                ex,
                400,
                "We could not parse the JSON body of your request. "
                "(HINT: This likely means you aren't using your HTTP library "
                "correctly. The OpenAI API expects a JSON payload.)",
            )
        elif (refusal := self._refusal(ex)) is not None:
            self._send_error(ex, *refusal)
        elif not body.get("model"):
            self._send_error(ex, 400, "you must provide a model parameter")
        elif not isinstance(body.get("messages"), list) or not body["messages"]:
            self._send_error(ex, 400, "Missing required parameter: 'messages'.", "messages")
        elif self.config.hang:
            ex.hold_open()
        else:
            text = self._next_reply()
            prompt = "\n".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
            if body.get("stream") is True:
                self._stream(ex, body, text, count_tokens(prompt))
            else:
                ex.send_json(200, self._completion(body, text, count_tokens(prompt)))

    def _next_reply(self) -> str:
        with self._lock:
            return self._config.replies.pop(0) if self._config.replies else self._config.reply

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _envelope(body: dict[str, Any], obj: str, completion_id: str) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": obj,
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }

    def _completion(self, body: dict[str, Any], text: str, prompt_tokens: int) -> dict[str, Any]:
        out = self._envelope(body, "chat.completion", f"chatcmpl-{uuid.uuid4().hex[:24]}")
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        out["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}]
        out["usage"] = self._usage(prompt_tokens, count_tokens(text))
        return out

    def _stream(self, ex: Exchange, body: dict[str, Any], text: str, prompt_tokens: int) -> None:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = self._envelope(body, "chat.completion.chunk", f"chatcmpl-{uuid.uuid4().hex[:24]}")

        def event(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> None:
            chunk = {**base, "choices": choices}
            if include_usage:  # every chunk carries "usage": null until the last one
                chunk["usage"] = usage
            ex.write_chunk(b"data: " + dump_json(chunk) + b"\n\n")

        def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        ex.begin_stream("text/event-stream; charset=utf-8")
        event(delta({"role": "assistant", "content": "", "refusal": None}))
        pieces = split_tokens(text)
        for i, piece in enumerate(pieces):
            if i and not ex.sleep(self.config.token_delay):
                ex.abandon()
                return
            event(delta({"content": piece}))
        event(delta({}, "stop"))
        if include_usage:
            event([], self._usage(prompt_tokens, len(pieces)))
        ex.write_chunk(b"data: [DONE]\n\n")
        ex.end_stream()

    def _models(self, ex: Exchange) -> None:
        models = [
            {"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "system"}
            for m in self.config.models
        ]
        ex.send_json(200, {"object": "list", "data": models})

    def _control(self, ex: Exchange) -> None:
        if (ex.method, ex.path) == ("POST", "/_emulator/reset"):
            self.reset()
            ex.send_json(200, {})
        elif (ex.method, ex.path) == ("GET", "/_emulator/state"):
            ex.send_json(
                200, {"config": dataclasses.asdict(self.config), "request_count": len(self.requests)}
            )
        elif (ex.method, ex.path) == ("POST", "/_emulator/config"):
            try:
                self.configure(**json.loads(ex.body or b"{}"))
            except (ValueError, TypeError) as exc:
                ex.send_json(400, {"error": str(exc)})
                return
            ex.send_json(200, dataclasses.asdict(self.config))
        else:
            ex.send_json(404, {"error": "unknown control route"})


def main(argv: list[str] | None = None) -> None:
    serve_main(OpenAIEmulator, "OpenAI", 8090, argv)


if __name__ == "__main__":
    main()
