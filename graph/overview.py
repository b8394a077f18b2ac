"""What `modelyard models` and the UI's status panel show: each local model, its tasks and its state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.health import Cooldown
from lifecycle.placement import describe
from providers.errors import ProviderError
from providers.ollama_budget import display
from providers.ollama_http import canonical
from providers.ollama_pool import Host
from providers.ollama_types import LoadedModel, ModelStatus
from services import Services
from usage.history import spellings


@dataclass(frozen=True)
class ModelRow:
    """One local model: the task types it serves, and its live state (Ollama's, joined with ours)."""

    model: str
    tasks: list[str]
    """Task types it serves; an alternate's entry reads "erd (alternate)"."""
    installed: bool | None
    status: str
    size: int | None
    """Memory it holds when loaded (/api/ps), else its file size (/api/tags)."""
    size_vram: int | None
    expires_at: datetime | None
    cooldown_s: float
    """Seconds it is still skipped after failing to load or timing out (0: not cooling down)."""
    cooldown_reason: str | None
    load_s_median: float | None
    """Its median measured load time on this machine (None: never measured)."""
    quality_warnings: list[str] = field(default_factory=list)
    """Task types whose recent validation pass rate is under `routing.quality.min_pass_rate`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return data


@dataclass(frozen=True)
class HostRow:
    """One Ollama host of a pool: whether it answers, what it holds, how busy and how fast it is."""

    name: str
    url: str
    health: str
    """"up", or why it is skipped ("down, skipped 25 s more: ...")."""
    loaded: list[str]
    installed: int | None
    """How many models it has installed (None: it did not answer)."""
    resident: int
    budget: int | None
    in_flight: int
    latency_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Overview:
    """Every routed model's row, the memory they hold against the budget, or why Ollama could not be asked."""

    rows: list[ModelRow]
    ollama_url: str
    error: str | None
    budget: int | None = None
    """`ollama.vram_budget_gb` in bytes (None: no budget)."""
    resident: int = 0
    """Memory every loaded model holds together, ours or not (/api/ps)."""
    hosts: list[HostRow] = field(default_factory=list)
    """Each host of a pool (empty with one host): the model rows then join what every host says."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ollama_url": self.ollama_url,
            "error": self.error,
            "budget": self.budget,
            "resident": self.resident,
            "models": [r.to_dict() for r in self.rows],
            "hosts": [h.to_dict() for h in self.hosts],
        }


def routed_models(services: Services) -> dict[str, list[str]]:
    """Each model the routing table names (canonical spelling) and the task types it serves."""
    served: dict[str, list[str]] = {}
    tasks = services.config.routing.tasks
    for task, route in tasks.items():
        served.setdefault(canonical(route.model), []).append(task)
    for task, route in tasks.items():
        for alternate in route.alternates:
            served.setdefault(canonical(alternate), []).append(f"{task} (alternate)")
    return served


async def models_overview(services: Services) -> Overview:
    """Ask Ollama once for installed and loaded models and join them with routing, health and usage."""
    if not services.pool.single:
        return await _pool_overview(services)
    ollama = services.ollama
    served = routed_models(services)
    budget = ollama.budget.limit
    facts = asyncio.ensure_future(asyncio.to_thread(_local_facts, services, served))
    try:
        installed, loaded = await asyncio.gather(ollama.list_available_models(), ollama.list_loaded_models())
    except ProviderError as exc:
        local = await facts  # the files answer even when Ollama does not
        rows = [_row(services, name, tasks, None, None, [], local[name]) for name, tasks in served.items()]
        return Overview(rows, ollama.base_url, exc.message, budget)
    local = await facts
    sizes = {m.name: m.size for m in installed}
    rows = [
        _row(services, name, tasks, name in sizes, sizes.get(name), loaded, local[name])
        for name, tasks in served.items()
    ]
    return Overview(rows, ollama.base_url, None, budget, sum(m.size for m in loaded))


@dataclass(frozen=True)
class _Local:
    """What this machine's files say of a model: its cool-down, a load in progress, its load times."""

    cooling: Cooldown | None
    loading: bool
    load_s_median: float | None
    now: float
    warnings: list[str]


def _local_facts(services: Services, served: dict[str, list[str]]) -> dict[str, _Local]:
    """Read in a worker thread: the health file and the usage table are files."""
    now = time.time()
    return {
        name: _Local(
            services.health.cooling(name),
            services.health.loading_since(name) is not None,
            services.usage.load_times(name).median_s,
            now,
            _quality_warnings(services, name, tasks),
        )
        for name, tasks in served.items()
    }


def _quality_warnings(services: Services, name: str, tasks: list[str]) -> list[str]:
    quality = services.config.routing.quality
    warnings = []
    for task in tasks:
        task = task.removesuffix(" (alternate)")
        for spelling in dict.fromkeys(spellings(name)):  # rows carry the config's spelling
            low = services.usage.low_quality(spelling, task, quality)
            if low is not None:
                warnings.append(low.message)
                break
    return warnings


def _row(
    services: Services,
    name: str,
    tasks: list[str],
    installed: bool | None,
    file_size: int | None,
    loaded: list[LoadedModel],
    local: _Local,
) -> ModelRow:
    resident = next((m for m in loaded if m.name == name), None)
    status = ModelStatus.ERROR if installed is None else services.ollama.status_from(name, loaded)
    if status is ModelStatus.NOT_LOADED and local.loading:
        status = ModelStatus.LOADING  # another process (the app warming up, a CLI run) is loading it
    cooling = local.cooling
    if cooling is not None and status is ModelStatus.NOT_LOADED:
        status = ModelStatus.ERROR
    return ModelRow(
        model=display(name),
        tasks=tasks,
        installed=installed,
        status=status.value,
        size=resident.size if resident is not None else file_size,
        size_vram=resident.size_vram if resident is not None else None,
        expires_at=resident.expires_at if resident is not None else None,
        cooldown_s=round(cooling.left_s(local.now), 1) if cooling is not None else 0.0,
        cooldown_reason=cooling.reason if cooling is not None else None,
        load_s_median=local.load_s_median,
        quality_warnings=local.warnings,
    )


async def _pool_overview(services: Services) -> Overview:
    """Every host asked at once; a model row is installed or loaded if it is on any host that answers."""
    served = routed_models(services)
    hosts = services.pool.hosts
    facts = asyncio.ensure_future(asyncio.to_thread(_local_facts, services, served))
    downs = asyncio.ensure_future(asyncio.to_thread(services.health.host_cooldowns))
    answers = await asyncio.gather(*(host.inspect() for host in hosts), return_exceptions=True)
    local, cooldowns, now = await facts, await downs, time.time()
    installed: dict[str, int] = {}
    loaded: list[LoadedModel] = []
    host_rows, errors = [], []
    for host, answer in zip(hosts, answers, strict=True):
        down = cooldowns.get(host.url)
        if isinstance(answer, BaseException):
            message = answer.message if isinstance(answer, ProviderError) else str(answer)
            errors.append(f"{host.name}: {message}")
            health = describe(down, now) if down and down.until > now else f"down: {message}"
            host_rows.append(_host_row(host, health, [], None))
            continue
        host_installed, host_loaded = answer
        installed.update({m.name: m.size for m in host_installed})
        loaded.extend(host_loaded)
        host_rows.append(_host_row(host, "up", host_loaded, len(host_installed)))
    error = "; ".join(errors) if len(errors) == len(hosts) else None
    known = None if error else True
    rows = [
        _row(
            services,
            name,
            tasks,
            (name in installed) if known else None,
            installed.get(name),
            loaded,
            local[name],
        )
        for name, tasks in served.items()
    ]
    url = ", ".join(host.url for host in hosts)
    return Overview(rows, url, error, None, sum(m.size for m in loaded), host_rows)


def _host_row(host: Host, health: str, loaded: list[LoadedModel], installed: int | None) -> HostRow:
    return HostRow(
        name=host.name,
        url=host.url,
        health=health,
        loaded=[display(m.name) for m in loaded],
        installed=installed,
        resident=sum(m.size for m in loaded),
        budget=host.client.budget.limit,
        in_flight=host.client.in_flight(),
        latency_ms=None if host.latency_s is None else round(host.latency_s * 1000, 1),
    )
