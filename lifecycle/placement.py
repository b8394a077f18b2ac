"""Which Ollama host of a pool serves a request: where the model is warm, else where it fits.

Each live host is inspected at once (`/api/ps` and `/api/tags`, concurrently across hosts, each
bounded by `connect_timeout + inspect_timeout`), then ranked:

1. the model is loaded there;
2. it is installed there and fits the host's memory budget beside what is loaded;
3. it is installed there (the host's budget unloads idle models to make room);
ties broken by this process's requests in flight per unit of `weight`, then by measured latency.

A host that refuses, hangs or answers garbage is marked down with the lifecycle cool-down and
skipped until it ends, so no request waits on it twice. A model cooling down on one host (a failed
load, a timeout) is only skipped there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from lifecycle.health import Cooldown, HealthBook
from providers.errors import ProviderError
from providers.ollama_budget import display
from providers.ollama_http import canonical
from providers.ollama_pool import Host, OllamaPool
from providers.ollama_types import InstalledModel, LoadedModel

TIERS = ("warm", "room", "installed", "pull")


@dataclass(frozen=True)
class HostView:
    """What one host said about one model, at one moment."""

    host: Host
    loaded: bool
    installed: bool
    room: bool
    """It fits the host's budget beside what is loaded (always, without a budget)."""


@dataclass(frozen=True)
class Placement:
    """The chosen host and why; `skipped` names the hosts left out and the reason for each."""

    host: Host
    tier: str
    reason: str
    skipped: tuple[str, ...] = ()

    def to_state(self) -> dict[str, object]:
        """The JSON-serialisable record kept in graph state."""
        return {"host": self.host.name, "url": self.host.url, "tier": self.tier, "reason": self.reason}


async def place(pool: OllamaPool, health: HealthBook, model: str, *, allow_pull: bool) -> Placement:
    """Choose the host for `model`; ProviderError (`server_down`, `not_installed`) when none can."""
    name = canonical(model)
    skipped: list[str] = []
    live: list[Host] = []
    records: dict[str, Cooldown] = {}  # hosts with a failure on record, its cool-down running or over
    for host in pool.hosts:
        record = await health.host_record_now(host.url)
        if record is not None:
            records[host.url] = record
            if record.left_s(health.now()) > 0:
                skipped.append(f"{host.name} ({describe(record, health.now())})")
                continue
        cooling = await health.cooling_now(pool.health_key(name, host))
        if cooling is not None:
            skipped.append(f"{host.name} ({display(name)} cooling down: {cooling.message})")
            continue
        live.append(host)
    answers = await asyncio.gather(*(_inspect(host, name) for host in live), return_exceptions=True)
    views: list[HostView] = []
    for host, answer in zip(live, answers, strict=True):
        if isinstance(answer, ProviderError):
            failed = health.record_host_failure
            down = await asyncio.to_thread(failed, host.url, answer.reason, answer.message)
            skipped.append(f"{host.name} ({describe(down, health.now())})")
        elif isinstance(answer, BaseException):
            raise answer
        else:
            views.append(answer)
            if host.url in records:  # it answered again: its failures are over (no write otherwise)
                await asyncio.to_thread(health.record_host_success, host.url)
    return _choose(name, views, skipped, allow_pull)


def _choose(name: str, views: list[HostView], skipped: list[str], allow_pull: bool) -> Placement:
    def rank(view: HostView) -> tuple[int, float, float]:
        tier = 0 if view.loaded else 1 if view.installed and view.room else 2 if view.installed else 3
        return tier, view.host.load(), view.host.latency_s or 0.0

    eligible = [v for v in views if v.installed or allow_pull]
    if not eligible:
        raise _nowhere(name, views, skipped)
    best = min(eligible, key=rank)
    tier = TIERS[rank(best)[0]]
    where = best.host.name
    reason = {
        "warm": f"{display(name)} is warm on {where}",
        "room": f"{display(name)} is installed on {where}, with room to load it",
        "installed": f"{display(name)} is installed on {where} (no host has it loaded or room for it)",
        "pull": f"{display(name)} is installed on no host; pulling it on {where}",
    }[tier]
    return Placement(best.host, tier, reason, tuple(skipped))


def _nowhere(name: str, views: list[HostView], skipped: list[str]) -> ProviderError:
    if not views:
        return ProviderError("server_down", "no Ollama host could serve the request: " + "; ".join(skipped))
    hosts = ", ".join(view.host.name for view in views)
    extra = f"; skipped {'; '.join(skipped)}" if skipped else ""
    return ProviderError(
        "not_installed",
        f"{display(name)} is not installed on any Ollama host ({hosts}){extra}; "
        f"run `ollama pull {name}` on one, or set ollama.allow_pull",
    )


async def _inspect(host: Host, name: str) -> HostView:
    installed, loaded = await host.inspect()
    size = _size(name, installed)
    return HostView(
        host=host,
        loaded=_listed(name, loaded),
        installed=size is not None,
        room=size is not None and host.client.budget.has_room(name, size, loaded),
    )


def _listed(name: str, loaded: list[LoadedModel]) -> bool:
    return any(entry.name == name for entry in loaded)


def _size(name: str, installed: list[InstalledModel]) -> int | None:
    for entry in installed:
        if entry.name == name:
            return entry.size
    return None


def describe(cooldown: Cooldown, now: float) -> str:
    """A host's running cool-down in words: down, skipped N s more, and why."""
    return f"down, skipped {cooldown.left_s(now):.0f} s more: {cooldown.message}"
