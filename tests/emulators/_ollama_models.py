"""Model configuration for the Ollama emulator and Ollama's wire conventions.

Names, durations and JSON shapes follow ollama/ollama v0.12 (server/routes.go,
api/types.go, types/model/name.go); the comments name the source where behaviour
is surprising.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# llm/server.go: what a crashed or OOM-killed runner reports mid-generation.
RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource "
    "limitations or an internal error, check ollama server logs for details"
)
GIB = 1 << 30


def human_bytes(count: int) -> str:
    """Sizes as Ollama's format.HumanBytes2 writes them in its errors: "16.0 GiB", "512.0 MiB"."""
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def no_system_memory(required: int, available: int) -> str:
    """The load error of a model that cannot fit even with nothing else loaded (llm/server.go)."""
    return (
        f"model requires more system memory ({human_bytes(required)}) "
        f"than is available ({human_bytes(available)})"
    )


# The scheduler's load failures as different Ollama versions word them (llm/server.go).
NO_SYSTEM_MEMORY = no_system_memory(16 * GIB, 4 * GIB)
NO_GPU_FIT = "unable to load full model on GPU"  # ErrLoadRequiredFull
LOAD_ERRORS = (NO_SYSTEM_MEMORY, NO_GPU_FIT, RUNNER_STOPPED)
# server/sched.go ErrMaxQueue (two spaces after the full stop), sent with 503.
SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"
# What nginx sends when the Ollama behind it is down.
PROXY_502 = (
    502,
    "text/html",
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n"
    "</body>\r\n</html>\r\n",
)
DEFAULT_KEEP_ALIVE = 300.0  # envconfig.KeepAlive(): 5m
FOREVER = math.inf  # a negative keep_alive keeps the model loaded indefinitely


@dataclass
class ModelSpec:
    """How one emulated model behaves. Every field has a default."""

    reply: str = "Hello from the Ollama emulator."
    replies: list[str] = field(default_factory=list)  # popped per generate/chat, then `reply`
    installed: bool = True
    pullable: bool = True
    size: int = 4_109_865_159  # bytes: /api/tags, /api/ps, and what a load takes of the memory limit
    size_vram: int | None = None  # bytes on the GPU, shown by /api/ps; None = all of `size`
    family: str = "llama"
    parameter_size: str = "7.2B"
    quantization_level: str = "Q4_K_M"
    context_length: int = 4096  # shown by /api/ps unless the request sets options.num_ctx
    load_delay: float = 0.0
    load_error: str | None = None  # returned with 500 whenever the model must be loaded
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    stall_after: int | None = None  # chunks sent before the stream goes silent
    error_after: int | None = None  # chunks sent before an {"error"} line ends the stream
    error_message: str = RUNNER_STOPPED
    status_code_error: tuple[int, str] | None = None  # immediate (status, message) reply
    busy_for: int = 0  # the next N generate/chat requests get 503 SERVER_BUSY (queue full)
    raw_error: tuple[int, str, str] | None = None  # (status, content type, body) verbatim: a proxy page
    empty_body: bool = False  # generate/chat answer 200 with an empty body (a broken proxy)
    reset_after: int | None = None  # chunks sent before the connection is reset (TCP RST)
    garbage_after: int | None = None  # chunks sent before a malformed NDJSON line ends the stream
    pull_stall_after: int | None = None  # pull progress lines sent before the pull goes silent


SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelSpec))


def spec_from_fields(fields: Mapping[str, Any], base: ModelSpec | None = None) -> ModelSpec:
    """Build a spec from JSON-ish fields (config file, HTTP control surface)."""
    unknown = set(fields) - SPEC_FIELDS
    if unknown:
        raise ValueError(f"unknown ModelSpec fields: {sorted(unknown)}")
    values = dict(fields)
    error = values.get("status_code_error")
    if error is not None:
        status, message = error  # JSON has no tuples; accept [status, message]
        values["status_code_error"] = (int(status), str(message))
    raw = values.get("raw_error")
    if raw is not None:
        status, content_type, text = raw  # [status, content type, body]
        values["raw_error"] = (int(status), str(content_type), str(text))
    if "replies" in values:
        values["replies"] = [str(r) for r in values["replies"]]
    return dataclasses.replace(base or ModelSpec(), **values)


def normalize_name(name: str) -> str:
    """Display form of a model name: "mistral" -> "mistral:latest".

    Ollama fills in the default host, namespace and tag (types/model/name.go)
    and then shows the shortest unambiguous form.
    """
    short = name.strip()
    for prefix in ("registry.ollama.ai/", "library/"):
        if short.lower().startswith(prefix):
            short = short[len(prefix) :]
    if ":" not in short.rsplit("/", 1)[-1]:
        short += ":latest"
    return short


def model_key(name: str) -> str:
    return normalize_name(name).casefold()  # Ollama matches existing names case-insensitively


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)?")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string ("5m", "1h30m", "250ms"), as time.ParseDuration."""
    body, sign = text, 1.0
    if body[:1] in ("+", "-"):
        sign, body = (-1.0 if body[0] == "-" else 1.0), body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(body):
        part = _DURATION_PART.match(body, pos)
        if part is None:
            raise ValueError(f'time: invalid duration "{text}"')
        if part.group(2) is None:
            raise ValueError(f'time: missing unit in duration "{text}"')
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        pos = part.end()
    return sign * total


def parse_keep_alive(value: Any) -> float:
    """Seconds to keep a model loaded, per api.Duration.UnmarshalJSON.

    Numbers are seconds, strings are Go durations, negatives mean forever
    (returned as ``math.inf``), absent means the 5 minute default.
    """
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        go_type = {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}
        raise ValueError(f"Unsupported type: '{go_type.get(type(value), type(value).__name__)}'")
    seconds = parse_go_duration(value) if isinstance(value, str) else float(value)
    return FOREVER if seconds < 0 else seconds


# -- JSON shapes ----------------------------------------------------------------


def utc_timestamp() -> str:
    """created_at: Go marshals time.Now().UTC() as RFC 3339 with a "Z"."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def local_timestamp(when: datetime) -> str:
    """modified_at/expires_at: local time with its UTC offset, like Go's time.Now()."""
    return when.astimezone().isoformat()


def expiry_timestamp(seconds_left: float) -> str:
    # Go's time.Now().Add(math.MaxInt64) lands ~292 years out ("forever").
    left = timedelta(days=292 * 365) if math.isinf(seconds_left) else timedelta(seconds=seconds_left)
    return local_timestamp(datetime.now().astimezone() + left)


def digest(name: str) -> str:
    return hashlib.sha256(normalize_name(name).encode()).hexdigest()


def details(spec: ModelSpec) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization_level,
    }


@dataclass
class ModelEntry:
    """A configured model: its display name, behaviour and install time."""

    name: str
    spec: ModelSpec
    modified_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    def tags_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": local_timestamp(self.modified_at),
            "size": self.spec.size,
            "digest": digest(self.name),
            "details": details(self.spec),
        }

    def show_json(self) -> dict[str, Any]:
        spec, blob = self.spec, digest(self.name + "/model")
        template = "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}"
        return {
            "license": "Apache License 2.0",
            "modelfile": (
                '# Modelfile generated by "ollama show"\n'
                "# To build a new Modelfile based on this one, replace the FROM "
                f"line with:\n# FROM {self.name}\n\n"
                f"FROM /root/.ollama/models/blobs/sha256-{blob}\n"
                f'TEMPLATE """{template}"""\nPARAMETER num_ctx {spec.context_length}\n'
            ),
            "parameters": f"num_ctx                        {spec.context_length}",
            "template": template,
            "details": details(spec),
            "model_info": {
                "general.architecture": spec.family,
                "general.file_type": 15,
                "general.parameter_count": _parameter_count(spec.parameter_size),
                "general.quantization_version": 2,
                f"{spec.family}.context_length": max(spec.context_length, 8192),
            },
            "capabilities": ["completion"],
            "modified_at": local_timestamp(self.modified_at),
        }


def _parameter_count(parameter_size: str) -> int:
    match = re.fullmatch(r"([\d.]+)([KMB])", parameter_size.strip().upper())
    if match is None:
        return 0
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}[match.group(2)]
    return int(float(match.group(1)) * scale)
