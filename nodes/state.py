"""The graph's state: small, typed, JSON-serialisable; never a key, never a client.

It lives beside the nodes (not in graph/) so that dependencies point one way:
graph -> nodes. `graph` re-exports it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required

from pydantic import ConfigDict

# typing_extensions' TypedDict: pydantic (Studio's schemas) rejects typing's on Python < 3.12.
from typing_extensions import TypedDict

from providers.errors import FallbackReason
from understanding.turns import ThreadArtifact, TurnKind
from understanding.types import Layer

Source = Literal["local", "cloud"]
ClassifiedBy = Layer
HISTORY_TURNS = 3
"""Turns of the conversation a thread keeps (and sends to the model): enough for "it" and "that
one" to resolve, small enough that a checkpoint stays flat and the context stays short."""
HISTORY_CHARS = 400
"""Characters kept of each turn's request and of a question's answer (about 100 tokens each)."""


class RequestIn(TypedDict, total=False):
    """What a caller (CLI, chat UI, Studio's form) sends for one request."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    prompt: Required[str]
    """The user's request, e.g. "ERD for a blog" or "now add a TAGS table"."""
    task_type: str | None
    """An explicit task type (`mermaid`, `erd`, `html`, ...); empty means classify."""
    force_local: bool | None
    """Never call a cloud model; empty means the config's `force_local_default`."""
    latency_budget_s: float | None
    """Seconds the answer may wait to start (a cold model's load counts); empty means the task's
    `latency_budget_s`, and none there means no budget."""


class RouteChoice(TypedDict):
    """lifecycle.choice.Choice as plain JSON: which model (None: the cloud), which option, why."""

    model: str | None
    option: str
    reason: str
    budget_s: float | None


class HostPlacement(TypedDict):
    """lifecycle.placement.Placement as plain JSON: which Ollama host of the pool serves the request, why."""

    host: str
    url: str
    tier: str
    reason: str


class Attempt(TypedDict):
    """One call to a model and what became of it."""

    source: Source
    provider: str
    model: str
    ok: bool
    valid: bool | None
    error: str | None
    reason: FallbackReason | None
    repair: bool
    checked: NotRequired[bool]
    """False when no parser could check the reply (set by validate_output)."""


class HistoryTurn(TypedDict):
    """One earlier turn, shortened: what a follow-up needs to read naturally."""

    turn: int
    prompt: str
    kind: TurnKind
    task: str
    answer: str | None
    """A question's answer (shortened); an artifact is kept whole in `artifacts`, not here."""


class TurnRecord(TypedDict):
    """understanding.turns.TurnDecision as plain JSON."""

    kind: TurnKind
    task: str
    target_task: str | None
    target_turn: int | None
    reference: bool
    reason: str
    decided_by: str | None
    confidence: float | None


class Conversation(TypedDict, total=False):
    """What a thread keeps across its requests.

    Only what a later turn reads, so a checkpoint stays the same size however long the thread runs.
    """

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    last_artifact: str | None
    """The artifact delivered last in this thread (kept for callers; turns read `artifacts`)."""
    last_task: str | None
    """The task type of the last request, carried over when a follow-up names none."""
    artifacts: dict[str, ThreadArtifact]
    """The latest artifact of each task type (one per type: bounded by the config's task types)."""
    history: list[HistoryTurn]
    """The last HISTORY_TURNS turns, each shortened to HISTORY_CHARS."""
    turn: int
    """This request's turn number in the thread (1 for the first)."""


class Run(TypedDict, total=False):
    """One request's working fields: classify_task resets every one of them."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    turn_decision: TurnRecord | None
    """New request, revision or question, and of which artifact (classify_task decides)."""

    # Classification and routing.
    task: str
    """The resolved task type."""
    classified_by: ClassifiedBy
    confidence: float
    model: str
    """The local model that serves `task` (an alternate when the latency budget chose one)."""
    route_choice: RouteChoice | None
    """How ensure_model chose among the task's model, its alternates and the cloud (None: no choice
    to make, the task has neither alternates nor a latency budget)."""
    ollama_host: HostPlacement | None
    """The Ollama host ensure_model chose (None: one host, no choice to make)."""
    model_status: str
    """The model's ModelStatus as ensure_model left it."""
    force_local_effective: bool
    cloud_providers: list[str]
    """Cloud providers allowed for this request, in order; empty when none may be used."""
    cloud_blocked: str | None
    """Why no cloud provider may be used, when none may."""
    cloud_tried: list[str]

    # The latest reply and its verdict.
    reply: str | None
    reply_source: Source | None
    reply_provider: str | None
    reply_model: str | None
    reply_truncated: bool | None
    """The model stopped at its length limit (Ollama's done_reason "length"): the reply may be cut."""
    artifact: str | None
    validation: dict[str, Any] | None
    repairs_left: int
    """Repairs the local model may still be asked for (validation.repair_attempts per request)."""
    cloud_repairs_left: int
    """Repairs the cloud provider that replied last may still be asked for (cloud_repair_attempts)."""
    attempts: list[Attempt]
    """Every model call of this request, with its verdict and error (repairs included)."""

    # Failure, timings, tokens.
    fallback_reason: FallbackReason | None
    error: str | None
    """The latest failure in words (local first; cloud failures are added to it)."""
    started_at: float
    load_s: float | None
    first_token_s: float | None
    input_tokens: int | None
    """Every attempt's input tokens added up (local, repairs, cloud)."""
    output_tokens: int | None
    cloud_input_tokens: int | None
    """The cloud's share of `input_tokens` (the dashboard credits each model its own)."""
    cloud_output_tokens: int | None
    usage_id: int | None
    """The request's usage row, inserted as "interrupted" when it starts and completed by finalize."""

    response: dict[str, Any] | None
    """The final ModelResponse as a plain dict (what `modelyard ask --json` prints)."""


class State(RequestIn, Conversation, Run, total=False):
    """Everything the graph knows about a thread, as every node and route sees it.

    LangGraph keeps it in fewer channels (graph/storage.py): the request's own fields and the
    conversation each in one, the run's working fields together in one.
    """


RUN_KEYS = frozenset(Run.__annotations__)
"""The keys of State that belong to one request's run."""
