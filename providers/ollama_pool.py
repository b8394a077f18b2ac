"""A pool of Ollama hosts: one client (with its own memory budget) per host, and what was measured.

Which host serves a request is decided in lifecycle/placement.py; this module only holds the
hosts. A config without `ollama.hosts` is a pool of one (the server at `ollama.base_url`), and
then nothing here costs a request anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from config.schema import OllamaConfig, OllamaHost
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from providers.ollama_http import canonical
from providers.ollama_types import InstalledModel, LoadedModel

LATENCY_WEIGHT = 0.3  # how much one new inspection round trip moves a host's latency average


@dataclass
class Host:
    """One Ollama server of the pool."""

    name: str
    url: str
    weight: float
    client: OllamaClient
    latency_s: float | None = field(default=None)
    """Moving average of this host's inspection round trip (/api/ps and /api/tags together)."""

    def measured(self, seconds: float) -> None:
        """Fold one inspection's round trip into the average."""
        old = self.latency_s
        self.latency_s = seconds if old is None else old + LATENCY_WEIGHT * (seconds - old)

    async def inspect(self) -> tuple[list[InstalledModel], list[LoadedModel]]:
        """`/api/tags` and `/api/ps`, asked together; the round trip is folded into `latency_s`.

        Each is bounded by the client's inspection limits, and one failing cancels the other.
        """
        started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                tags = group.create_task(self.client.list_available_models())
                ps = group.create_task(self.client.list_loaded_models())
        except* ProviderError as failed:
            raise failed.exceptions[0] from None
        self.measured(time.monotonic() - started)
        return tags.result(), ps.result()

    def load(self) -> float:
        """Requests in flight here, per unit of weight."""
        return self.client.in_flight() / self.weight


class OllamaPool:
    """Every configured Ollama host; `primary` is the first (the only one without a pool)."""

    def __init__(
        self, config: OllamaConfig, *, last_used: Callable[[str], float | None] | None = None
    ) -> None:
        entries = config.host_list()
        names = _names(entries)
        self.hosts = [
            Host(
                name=name,
                url=entry.url,
                weight=entry.weight,
                client=OllamaClient(_host_config(config, entry), last_used=last_used),
            )
            for name, entry in zip(names, entries, strict=True)
        ]
        self._by_url = {host.url: host for host in self.hosts}

    @property
    def primary(self) -> Host:
        """The first host."""
        return self.hosts[0]

    @property
    def single(self) -> bool:
        """One host: requests go to it without any placement."""
        return len(self.hosts) == 1

    def host(self, url: str | None) -> Host:
        """The host at `url` (a request's chosen host), the primary for None or a host since removed."""
        return self._by_url.get(url or "", self.primary)

    def health_key(self, model: str, host: Host) -> str:
        """The cool-down key of `model` on `host`: the model alone without a pool, else per host."""
        return model if self.single else f"{model} on {host.name}"

    async def loaded(self) -> dict[str, list[str]]:
        """Each answering host's loaded models (`/api/ps`, all at once); ProviderError if none answers."""
        answers = await asyncio.gather(
            *(h.client.list_loaded_models() for h in self.hosts), return_exceptions=True
        )
        found = {
            h.name: [m.name for m in a]
            for h, a in zip(self.hosts, answers, strict=True)
            if isinstance(a, list)
        }
        if not found:
            raise next(a for a in answers if isinstance(a, BaseException))
        return found

    async def unload(self, model: str) -> list[str]:
        """Unload `model` wherever it is loaded (the one host: there, unasked); the hosts it left."""
        name = canonical(model)
        if self.single:
            await self.primary.client.unload_model(name)
            return [self.primary.name]
        loaded = await self.loaded()
        where = [h for h in self.hosts if name in loaded.get(h.name, [])]
        for host in where:
            await host.client.unload_model(name)
        return [host.name for host in where]

    async def aclose(self) -> None:
        """Close every host's connections (all of them, even when one fails)."""
        failure: Exception | None = None
        for host in self.hosts:
            try:
                await host.client.aclose()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


def _host_config(config: OllamaConfig, entry: OllamaHost) -> OllamaConfig:
    budget = entry.vram_budget_gb if entry.vram_budget_gb is not None else config.vram_budget_gb
    return config.model_copy(update={"base_url": entry.url, "vram_budget_gb": budget, "hosts": ()})


def _names(entries: tuple[OllamaHost, ...]) -> list[str]:
    """Each host's name: its own, else its host name, else host:port when host names repeat."""
    hostnames = [urlsplit(entry.url).hostname or entry.url for entry in entries]
    names = []
    for entry, hostname in zip(entries, hostnames, strict=True):
        if entry.name:
            names.append(entry.name)
        elif hostnames.count(hostname) > 1:
            names.append(urlsplit(entry.url).netloc)
        else:
            names.append(hostname)
    return names
