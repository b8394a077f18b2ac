"""Everything a node needs, built once per process: clients, validators, the usage store."""

from __future__ import annotations

from dataclasses import dataclass

from config.schema import AppConfig
from providers.cloud import CloudModels
from providers.ollama import OllamaClient
from usage.store import UsageStore
from validators import Validators


@dataclass
class Services:
    """Long-lived collaborators of the nodes; one per (config, data dir) per process."""

    config: AppConfig
    ollama: OllamaClient
    cloud: CloudModels
    validators: Validators
    usage: UsageStore

    @classmethod
    def create(cls, config: AppConfig) -> Services:
        """Build every collaborator from `config` (no network I/O happens here)."""
        return cls(
            config=config,
            ollama=OllamaClient(config.ollama),
            cloud=CloudModels(config),
            validators=Validators(config.validation),
            usage=UsageStore.in_data_dir(config.data_dir),
        )

    async def aclose(self) -> None:
        """Release connections, worker processes and database handles."""
        await self.ollama.aclose()
        await self.cloud.aclose()
        await self.validators.aclose()
        self.usage.close()
