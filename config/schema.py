"""Typed shape of `models.yaml`; unknown keys are errors so typos surface at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from config.vocabulary import EXPECT_KINDS

CloudProviderName = Literal["gemini", "openai"]
ValidatorName = Literal["mermaid", "html", "code", "documentation", "jira"]


class UnknownTaskError(ValueError):
    """A task type that the config does not route (a usage error, not a failure)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A Go duration as Ollama's keep_alive takes it ("30m", "1h30m", "-1m"), or a plain number.
_GO_DURATION = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")


def check_http_url(value: str) -> str:
    """An http(s) URL with a host, without a trailing slash (ValueError otherwise)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL such as http://localhost:11434")
    return value.strip().rstrip("/")


def check_keep_alive(value: str | int) -> str | int:
    """Ollama's keep_alive: seconds, or a Go duration ("30m", "1h30m"); negative keeps forever."""
    if isinstance(value, int) or _NUMBER.match(value.strip()) or _GO_DURATION.match(value.strip()):
        return value
    raise ValueError(
        "expected seconds (a number) or a duration such as 30m, 1h or 90s; a negative value keeps "
        "the model loaded forever"
    )


class CooldownConfig(_Strict):
    """How long a local model that failed to load (or timed out) is skipped: base * 2**(n-1), capped."""

    base_s: float = Field(30.0, gt=0, description="the first cool-down, in seconds")
    max_s: float = Field(600.0, gt=0, description="the longest cool-down, in seconds")

    @model_validator(mode="after")
    def _ordered(self) -> CooldownConfig:
        if self.max_s < self.base_s:
            raise ValueError(f"max_s ({self.max_s:g}) must be at least base_s ({self.base_s:g})")
        return self


class OllamaHost(_Strict):
    """One Ollama server of a pool (`ollama.hosts`): a URL, or an object with these keys."""

    url: str
    name: str | None = Field(
        None, min_length=1, description="what status lines call it; default the URL's host name"
    )
    vram_budget_gb: float | None = Field(
        None, gt=0, description="this host's memory budget; default ollama.vram_budget_gb"
    )
    weight: float = Field(1.0, gt=0, description="a host of weight 2 takes twice the requests in flight")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)


class OllamaConfig(_Strict):
    """Where Ollama is and how long each phase of a local request may take."""

    base_url: str = "http://localhost:11434"
    hosts: tuple[OllamaHost, ...] = Field(
        (),
        description="a pool of Ollama servers (URLs or {url, name, vram_budget_gb, weight}); "
        "empty: the one server at base_url",
    )
    timeout: float = Field(120.0, gt=0, description="seconds for a whole generation")
    max_retries: int = Field(2, ge=0, le=10)
    connect_timeout: float = Field(2.0, gt=0)
    inspect_timeout: float = Field(5.0, gt=0, description="seconds for /api/tags, /api/ps and /api/show")
    load_timeout: float = Field(180.0, gt=0)
    first_token_timeout: float = Field(60.0, gt=0)
    pull_stall_timeout: float = Field(60.0, gt=0, description="a pull with no progress this long fails")
    keep_alive: str | int = "30m"
    allow_pull: bool = False
    num_predict: int = Field(4096, ge=16, description="the most tokens one reply may have")
    num_ctx: dict[str, int] = Field(
        default_factory=dict,
        description="context window (tokens) per model; others get one sized to the prompt",
    )
    max_num_ctx: int = Field(32768, ge=2048, description="the largest context window sized automatically")
    vram_budget_gb: float | None = Field(
        None,
        gt=0,
        description="the memory (GB, as /api/ps sizes count it) the models may hold together; "
        "a load that would exceed it first unloads the least recently used idle model",
    )
    budget_wait: float = Field(
        60.0, gt=0, description="seconds a load waits for busy models to finish before the budget fails it"
    )
    warmup: tuple[str, ...] = Field(
        (), description="task types or models loaded at app start (most used first), within the budget"
    )
    cooldown: CooldownConfig = CooldownConfig()

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value)

    @field_validator("hosts", mode="before")
    @classmethod
    def _host_entries(cls, value: object) -> object:
        """A bare URL is a host with default settings."""
        if isinstance(value, list | tuple):
            return tuple({"url": entry} if isinstance(entry, str) else entry for entry in value)
        return value

    @field_validator("hosts")
    @classmethod
    def _distinct_hosts(cls, value: tuple[OllamaHost, ...]) -> tuple[OllamaHost, ...]:
        for key in ("url", "name"):
            seen = [getattr(host, key) for host in value if getattr(host, key) is not None]
            twice = sorted({item for item in seen if seen.count(item) > 1})
            if twice:
                raise ValueError(f"each host needs its own {key}; listed more than once: {', '.join(twice)}")
        return value

    def host_list(self) -> tuple[OllamaHost, ...]:
        """The pool: `hosts`, else the one server at `base_url`."""
        return self.hosts or (OllamaHost(url=self.base_url),)

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: str | int) -> str | int:
        return check_keep_alive(value)

    @field_validator("num_ctx")
    @classmethod
    def _positive_windows(cls, value: dict[str, int]) -> dict[str, int]:
        small = {name: size for name, size in value.items() if size < 512}
        if small:
            raise ValueError(f"a context window must be at least 512 tokens, got {small}")
        return value


class TaskRoute(_Strict):
    """One task type: the local model that serves it and how its output is checked."""

    model: str = Field(min_length=1)
    validator: ValidatorName
    expect_kind: str | None = None
    keep_alive: str | int | None = Field(
        None, description="how long Ollama keeps this task's model resident; default ollama.keep_alive"
    )
    alternates: tuple[str, ...] = Field(
        (), description="other local models that serve this task, tried when the latency budget favours them"
    )
    latency_budget_s: float | None = Field(
        None, gt=0, description="seconds a request of this task may wait for its answer to start"
    )
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = Field(
        (),
        description="example requests of this type: the semantic classifier learns the type from them",
    )

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: str | int | None) -> str | int | None:
        return None if value is None else check_keep_alive(value)

    @model_validator(mode="after")
    def _kind_fits_validator(self) -> TaskRoute:
        if self.expect_kind is None:
            return self
        kinds = EXPECT_KINDS.get(self.validator)
        if kinds is None:
            raise ValueError(f"expect_kind: the {self.validator} validator takes no expect_kind")
        if self.expect_kind not in kinds:
            raise ValueError(
                f"expect_kind: {self.expect_kind!r} is not a kind the {self.validator} validator knows; "
                f"expected one of: {', '.join(sorted(kinds))}"
            )
        return self


class QualityConfig(_Strict):
    """When a local model's validation pass rate for a task type is low enough to warn about."""

    window: int = Field(20, ge=1, description="the last N local requests of a model and task type")
    min_requests: int = Field(5, ge=1, description="no warning before this many requests in the window")
    min_pass_rate: float = Field(
        0.7, ge=0, le=1, description="warn when the share of valid (or repaired) answers falls below this"
    )


class RoutingConfig(_Strict):
    """Task types and how a request is classified into one."""

    default_task: str
    tasks: dict[str, TaskRoute] = Field(min_length=1)
    max_prompt_bytes: int = Field(100_000, gt=0, description="longer prompts are refused, never cut")
    classifier_model: str | None = Field(
        None,
        min_length=1,
        description="a local model asked to classify when keywords and examples are unsure; "
        "only while Ollama already has it loaded (never loaded just to classify)",
    )
    classifier_timeout: float = Field(
        3.0, gt=0, le=30, description="seconds the classifier model may take before it is skipped"
    )
    keyword_min_confidence: float = Field(
        0.7,
        ge=0,
        le=1,
        description="keywords decide only at this confidence or above (0.95: one task matched; "
        "0.6: two tasks matched as strongly)",
    )
    semantic_min_confidence: float = Field(
        0.22,
        ge=0,
        le=1,
        description="similarity to the examples decides a thread's first request at this confidence "
        "or above (below it, the default task)",
    )
    semantic_min_confidence_in_thread: float = Field(
        0.5,
        ge=0,
        le=1,
        description="similarity to the examples overrides the thread's last task only at this "
        "confidence or above (a follow-up rarely resembles any example)",
    )
    quality: QualityConfig = QualityConfig()
    semantic_wait: float = Field(
        2.0,
        ge=0,
        le=10,
        description="seconds a request that needs the examples waits for the embedding model to finish "
        "loading (only in a process's first seconds); then the layer is skipped",
    )

    @model_validator(mode="after")
    def _default_is_a_task(self) -> RoutingConfig:
        if self.default_task not in self.tasks:
            known = ", ".join(sorted(self.tasks))
            raise ValueError(f"default_task: {self.default_task!r} is not one of the tasks ({known})")
        return self


class ValidationConfig(_Strict):
    """How artifacts are checked, and how hard we try to get a valid one."""

    repair_attempts: int = Field(1, ge=0, le=5, description="repairs asked of the local model")
    cloud_repair_attempts: int = Field(1, ge=0, le=5, description="repairs asked of each cloud provider")
    mermaid_timeout: float = Field(5.0, gt=0, description="seconds the Mermaid parser may take per diagram")
    mermaid_start_timeout: float = Field(
        30.0, gt=0, description="seconds for the Mermaid worker to start (Node and mermaid import)"
    )
    node: str = Field("node", min_length=1, description="the Node.js executable that runs the Mermaid parser")


def _default_cloud_models() -> dict[CloudProviderName, str]:
    return {"gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}


class FallbackConfig(_Strict):
    """Whether and how the cloud is used when the local path fails."""

    enabled: bool = True
    cloud_provider: CloudProviderName = "gemini"
    provider_order: tuple[CloudProviderName, ...] = ("gemini", "openai")
    force_local_default: bool = False
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(1, ge=0, le=5)
    models: dict[CloudProviderName, str] = Field(default_factory=_default_cloud_models)

    def order(self) -> tuple[CloudProviderName, ...]:
        """The preferred provider first, then the rest of `provider_order`."""
        rest = tuple(p for p in self.provider_order if p != self.cloud_provider)
        return (self.cloud_provider, *rest)


class FileConfig(_Strict):
    """Exactly what `models.yaml` holds."""

    ollama: OllamaConfig = OllamaConfig()
    routing: RoutingConfig
    validation: ValidationConfig = ValidationConfig()
    fallback: FallbackConfig = FallbackConfig()


class CloudSecrets(BaseModel):
    """Keys and endpoints from the environment; SecretStr keeps them out of reprs and logs."""

    model_config = ConfigDict(frozen=True)

    google_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    gemini_base_url: str | None = None
    """Where the Gemini REST API is (GOOGLE_GEMINI_BASE_URL); None is Google's own endpoint."""

    def secret_values(self) -> tuple[str, ...]:
        """Raw key strings, for redacting them from any text we store or show."""
        keys = (self.google_api_key, self.openai_api_key)
        return tuple(k.get_secret_value() for k in keys if k and k.get_secret_value())


class AppConfig(BaseModel):
    """The loaded configuration plus its environment overrides."""

    model_config = ConfigDict(frozen=True)

    source: Path
    data_dir: Path
    ollama: OllamaConfig
    routing: RoutingConfig
    validation: ValidationConfig
    fallback: FallbackConfig
    secrets: CloudSecrets = CloudSecrets()
    database_url: str | None = Field(default=None, repr=False)
    """MODELYARD_DATABASE_URL: PostgreSQL for checkpoints, usage and chats; None: SQLite files."""

    def route(self, task_type: str) -> TaskRoute:
        """The route of a known task type (KeyError for an unknown one)."""
        return self.routing.tasks[task_type]

    def keep_alive_for(self, task_type: str | None) -> str | int:
        """The task's own keep_alive, else `ollama.keep_alive`."""
        route = self.routing.tasks.get(task_type or "")
        if route is not None and route.keep_alive is not None:
            return route.keep_alive
        return self.ollama.keep_alive

    def check_task(self, task_type: str | None) -> None:
        """Raise UnknownTaskError for a task type this config does not route."""
        if task_type and task_type not in self.routing.tasks:
            known = ", ".join(self.routing.tasks)
            raise UnknownTaskError(f"unknown task type {task_type!r}; expected one of: {known}")
