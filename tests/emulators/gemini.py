"""A Gemini Developer API (generativelanguage) emulator, standing in for Google's cloud.

Speaks what ``google-genai`` (under langchain-google-genai's ChatGoogleGenerativeAI) sends:

* ``POST /{version}/models/{model}:generateContent`` (google-genai 3.x sends ``v1``; ``v1beta``
  and ``v1alpha`` work too): one ``GenerateContentResponse``;
* ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: one SSE event per chunk,
  ``data: {GenerateContentResponse}`` then a blank line (CRLF, as Google's front end sends),
  with no ``[DONE]`` sentinel; every chunk carries the cumulative ``usageMetadata`` and the
  last one the ``finishReason``. Without ``alt=sse`` the stream is one JSON array.

The key travels in ``x-goog-api-key`` (or ``?key=``). Errors use Google's envelope
``{"error": {"code", "message", "status", "details"?}}`` with the bodies the real API sends:
a wrong key is ``400 INVALID_ARGUMENT`` with ``ErrorInfo.reason = API_KEY_INVALID`` (or, by
``bad_key_status``, the real 401 ``ACCESS_TOKEN_TYPE_UNSUPPORTED`` / 403
``API_KEY_SERVICE_BLOCKED`` bodies), a missing key ``403 PERMISSION_DENIED``, and a 429
``RESOURCE_EXHAUSTED`` carries ``QuotaFailure``, ``Help`` and ``RetryInfo.retryDelay``::

    python -m tests.emulators.gemini --port 8091

``POST /_emulator/config`` takes the same fields as ``configure()``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from ._ollama_defaults import MERMAID_REPLY
from ._scripted import ScriptedEmulator, coerce_fields, serve_main
from ._server import Exchange
from ._text import count_tokens, split_tokens

__all__ = [
    "JIRA_JSON_REPLY",
    "GeminiConfig",
    "GeminiEmulator",
    "GeminiRequest",
    "error_body",
    "main",
    "prompt_text",
]

# What structured output returns for a JIRA request: raw JSON, no fences (responseMimeType JSON).
JIRA_JSON_REPLY = json.dumps(
    {
        "tasks": [
            {
                "summary": "Add the password reset request endpoint",
                "description": "POST /password-reset sends a single-use link that expires in 30 minutes.",
                "acceptance_criteria": ["Unknown emails get the same response as known ones"],
                "story_points": 3,
            },
            {
                "summary": "Build the set-new-password page",
                "description": "Validate the token, then let the user choose a new password.",
            },
        ]
    },
    indent=2,
)

# google.rpc.Code names Google sends with each HTTP status.
_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_SERVICE = "generativelanguage.googleapis.com"
_ROUTE = re.compile(r"^/(v1beta|v1|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$")


@dataclass
class GeminiConfig:
    """Behaviour of the emulated endpoint. Every field has a default."""

    reply: str = MERMAID_REPLY
    replies: list[str] = field(default_factory=list)  # popped per generation, then the defaults
    json_reply: str = JIRA_JSON_REPLY  # the reply when responseMimeType is application/json
    api_key: str | None = None  # when set, requests must carry exactly this key
    bad_key_status: int = 400  # how a wrong key is refused: 400, 401 or 403 (Google's real bodies)
    echo_key: bool = False  # add the DebugInfo "Invalid API key: <key>" Google has been seen to send
    status_error: tuple[int, str | None] | None = None  # (status, message or None for Google's own)
    fail_times: int = 0  # >0: only the first N generations fail (then they succeed)
    retry_delay: float | None = 20.0  # RetryInfo.retryDelay (seconds) in a 429 body; None: omitted
    retry_after: str | None = None  # a Retry-After header on errors (a proxy in front may add it)
    delay: float = 0.0  # seconds before answering
    token_delay: float = 0.0  # seconds between streamed chunks
    chunk_pieces: int = 4  # token-like pieces per streamed chunk (Google sends large chunks)
    hang: bool = False  # accept the request, then send nothing until the client leaves
    malformed: bool = False  # answer 200 with a body that is not a GenerateContentResponse
    finish_reason: str = "STOP"
    thoughts_tokens: int = 0  # usageMetadata.thoughtsTokenCount (gemini-2.5 "thinking")
    models: list[str] = field(default_factory=lambda: ["gemini-2.5-flash", "gemini-2.5-pro"])


def _coerce(fields: dict[str, Any]) -> dict[str, Any]:
    coerce_fields(GeminiConfig, fields)
    if fields.get("status_error") is not None:
        status, message = fields["status_error"]  # JSON sends [status, message]
        fields["status_error"] = (int(status), None if message is None else str(message))
    if fields.get("bad_key_status", 400) not in (400, 401, 403):
        raise ValueError("bad_key_status must be 400, 401 or 403")
    return fields


class GeminiRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]  # lower-cased names, e.g. "x-goog-api-key"

    @property
    def model(self) -> str | None:
        match = _ROUTE.match(self.path)
        return match.group(2) if match else None

    @property
    def generation_config(self) -> dict[str, Any]:
        config = self.body.get("generationConfig") if isinstance(self.body, dict) else None
        return config if isinstance(config, dict) else {}

    @property
    def schema(self) -> Any:
        """The structured-output schema sent (responseJsonSchema, else responseSchema), if any."""
        config = self.generation_config
        return config.get("responseJsonSchema", config.get("responseSchema"))

    @property
    def sent_key(self) -> bool:
        return bool(self.headers.get("x-goog-api-key")) or "key" in self.query


def error_body(status: int, message: str | None = None, details: list[Any] | None = None) -> dict[str, Any]:
    """Google's JSON error envelope (google.rpc.Status)."""
    text = message if message is not None else _DEFAULT_MESSAGES.get(status, "Unknown error.")
    error: dict[str, Any] = {
        "code": status,
        "message": text,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def _error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": _SERVICE, **metadata},
    }


def _localized(message: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}


def _bad_key_body(status: int, method: str) -> dict[str, Any]:
    """The bodies Google sends for a key it will not accept (see the module docstring)."""
    full_method = f"google.ai.generativelanguage.v1beta.GenerativeService.{method}"
    if status == 401:
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
            "cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
        return error_body(401, message, [_error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", method=full_method)])
    if status == 403:
        message = f"Requests to this API {_SERVICE} method {full_method} are blocked."
        info = _error_info("API_KEY_SERVICE_BLOCKED", apiName=_SERVICE, methodName=full_method)
        return error_body(403, message, [info, _localized(message)])
    message = "API key not valid. Please pass a valid API key."
    return error_body(400, message, [_error_info("API_KEY_INVALID"), _localized(message)])


def _duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON form ("20s", "0.5s")."""
    return f"{seconds:g}s"


class GeminiEmulator(ScriptedEmulator[GeminiConfig, GeminiRequest]):
    label = "gemini emulator"

    def __init__(
        self, reply: str = MERMAID_REPLY, *, port: int = 0, host: str = "127.0.0.1", **fields: Any
    ) -> None:
        super().__init__(GeminiConfig(reply=reply, **_coerce(fields)), port, host)

    def _coerce(self, fields: dict[str, Any]) -> dict[str, Any]:
        return _coerce(fields)

    def generations(self) -> list[GeminiRequest]:
        """The generateContent / streamGenerateContent requests, in order."""
        return [r for r in self.requests if r.model is not None]

    # -- HTTP -----------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        if ex.path.startswith("/_emulator/"):
            self._control(ex)
            return
        query = {k: v[-1] for k, v in parse_qs(ex.query).items()}
        try:
            body = json.loads(ex.body) if ex.body.strip() else None
        except ValueError:
            body = ex.body.decode(errors="replace")
        with self._lock:
            self._requests.append(GeminiRequest(ex.method, ex.path, query, body, dict(ex.headers)))
        match = _ROUTE.match(ex.path)
        if match is None or ex.method != "POST":
            # Google's front end answers an unknown path with a bare 404 (an HTML page).
            ex.send(
                404, b"<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>", "text/html; charset=UTF-8"
            )
            return
        version, model, method = match.groups()
        self._generate(ex, body, query, version, model, stream=method == "streamGenerateContent")

    def _refusal(self, ex: Exchange, query: dict[str, str], method: str) -> dict[str, Any] | None:
        """Auth and injected failures, in the order Google's front end checks them."""
        config = self.config
        key = ex.headers.get("x-goog-api-key") or query.get("key")
        if config.api_key is not None and not key:
            return error_body(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if config.api_key is not None and key != config.api_key:
            body = _bad_key_body(config.bad_key_status, method)
            if config.echo_key:
                debug = {
                    "@type": "type.googleapis.com/google.rpc.DebugInfo",
                    "detail": f"Invalid API key: {key}",
                }
                body["error"]["details"].append(debug)
            return body
        with self._lock:
            failing = (
                self._failures < config.fail_times
                if config.fail_times > 0
                else config.status_error is not None
            )
            if not failing:
                return None
            self._failures += 1
        status, message = config.status_error or (500, None)
        details: list[Any] = []
        if status == 429:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": f"{_SERVICE}/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                            "quotaValue": "10",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
            ]
            if config.retry_delay is not None:
                details.append(
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": _duration(config.retry_delay),
                    }
                )
        return error_body(status, message, details)

    def _send_error(self, ex: Exchange, body: dict[str, Any]) -> None:
        retry_after = self.config.retry_after
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        # Google pretty-prints its error bodies.
        ex.send(body["error"]["code"], json.dumps(body, indent=2).encode(), _JSON, headers)

    def _generate(
        self, ex: Exchange, body: Any, query: dict[str, str], version: str, model: str, *, stream: bool
    ) -> None:
        config = self.config
        if not ex.sleep(config.delay):
            return
        method = "StreamGenerateContent" if stream else "GenerateContent"
        if not isinstance(body, dict):
            self._send_error(ex, error_body(400, "Invalid JSON payload received. Unexpected token."))
            return
        refusal = self._refusal(ex, query, method)
        if refusal is not None:
            self._send_error(ex, refusal)
            return
        if model not in config.models:
            self._send_error(
                ex,
                error_body(
                    404,
                    f"models/{model} is not found for API version {version}, or is not supported for "
                    f"{method[0].lower()}{method[1:]}. Call ListModels to see the list of available "
                    "models and their supported methods.",
                ),
            )
            return
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            self._send_error(
                ex, error_body(400, "* GenerateContentRequest.contents: contents is not specified\n")
            )
            return
        if config.hang:
            ex.hold_open()
            return
        if config.malformed:
            # Something in front of the API answered 200 with a truncated body.
            ex.send(200, b'{"candidates": [{"content": {"parts": [{"text": "erDiag', _JSON)
            return
        structured = self._wants_json(body)
        text = self._next_reply(structured)
        prompt_tokens = count_tokens(prompt_text(body))
        if stream:
            self._stream(ex, model, text, prompt_tokens, sse=query.get("alt") == "sse")
        else:
            pieces = len(split_tokens(text))
            ex.send(
                200,
                _dump(self._response(model, text, prompt_tokens, pieces, last=True, rid=_response_id())),
                _JSON,
            )

    @staticmethod
    def _wants_json(body: dict[str, Any]) -> bool:
        config = body.get("generationConfig")
        return isinstance(config, dict) and config.get("responseMimeType") == "application/json"

    def _next_reply(self, structured: bool) -> str:
        with self._lock:
            if self._config.replies:
                return self._config.replies.pop(0)
            return self._config.json_reply if structured else self._config.reply

    def _response(
        self, model: str, text: str, prompt_tokens: int, output_tokens: int, *, last: bool, rid: str
    ) -> dict[str, Any]:
        config = self.config
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if last:
            candidate["finishReason"] = config.finish_reason
        candidate["index"] = 0
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens + config.thoughts_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if config.thoughts_tokens:
            usage["thoughtsTokenCount"] = config.thoughts_tokens
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": rid}

    def _stream(self, ex: Exchange, model: str, text: str, prompt_tokens: int, *, sse: bool) -> None:
        config = self.config
        pieces = split_tokens(text) or [""]
        size = max(1, config.chunk_pieces)
        groups = [pieces[i : i + size] for i in range(0, len(pieces), size)]
        rid = _response_id()
        ex.begin_stream("text/event-stream" if sse else "application/json; charset=UTF-8")
        sent = 0
        for i, group in enumerate(groups):
            if i and not ex.sleep(config.token_delay):
                ex.abandon()
                return
            sent += len(group)
            chunk = _dump(
                self._response(model, "".join(group), prompt_tokens, sent, last=i == len(groups) - 1, rid=rid)
            )
            if sse:
                ex.write_chunk(b"data: " + chunk + b"\r\n\r\n")
            else:  # a JSON array, one element per chunk
                ex.write_chunk((b"[" if i == 0 else b",\r\n") + chunk)
        if not sse:
            ex.write_chunk(b"]")
        ex.end_stream()

    def _control(self, ex: Exchange) -> None:
        if (ex.method, ex.path) == ("POST", "/_emulator/reset"):
            self.reset()
            ex.send_json(200, {})
        elif (ex.method, ex.path) == ("GET", "/_emulator/state"):
            ex.send_json(200, {"config": self._public_config(), "request_count": len(self.requests)})
        elif (ex.method, ex.path) == ("POST", "/_emulator/config"):
            try:
                self.configure(**json.loads(ex.body or b"{}"))
            except (ValueError, TypeError) as exc:
                ex.send_json(400, {"error": str(exc)})
                return
            ex.send_json(200, self._public_config())
        else:
            ex.send_json(404, {"error": "unknown control route"})

    def _public_config(self) -> dict[str, Any]:
        state = dataclasses.asdict(self.config)
        if state["api_key"] is not None:  # the expected key is never echoed
            state["api_key"] = "[set]"
        return state


_JSON = "application/json; charset=UTF-8"


def _dump(obj: Any) -> bytes:
    # Google's stream chunks are one line, with a space after each colon but none after commas.
    return json.dumps(obj, separators=(",", ": "), ensure_ascii=False).encode()


def _response_id() -> str:
    return uuid.uuid4().hex[:23]


def prompt_text(body: dict[str, Any]) -> str:
    """The text the emulator counts as the prompt (promptTokenCount): system instruction and turns."""
    texts: list[str] = []
    system = body.get("systemInstruction")
    for content in [system, *body.get("contents", [])]:
        if isinstance(content, dict):
            texts.extend(str(p.get("text", "")) for p in content.get("parts", []) if isinstance(p, dict))
    return "\n".join(texts)


def main(argv: list[str] | None = None) -> None:
    serve_main(GeminiEmulator, "Gemini", 8091, argv)


if __name__ == "__main__":
    main()
