"""Everything a node needs, built once per process: clients, validators, the usage store."""

from __future__ import annotations

from dataclasses import dataclass

from config.schema import AppConfig
from lifecycle.health import HealthBook
from providers.cloud import CloudModels
from providers.ollama import OllamaClient
from providers.ollama_pool import OllamaPool
from understanding.classifier import TaskClassifier
from usage.factory import open_usage_store
from usage.store import UsageStore
from validators import Validators


@dataclass
class Services:
    """Long-lived collaborators of the nodes; one per router (or per Studio context) per process."""

    config: AppConfig
    pool: OllamaPool
    """Every Ollama host; ensure_model picks one per request when there are several."""
    cloud: CloudModels
    validators: Validators
    usage: UsageStore
    classifier: TaskClassifier
    """The task-type classifier; its embedding model loads in a background thread from here on."""
    health: HealthBook
    """Cool-downs and loads in progress, shared with every process using the data directory."""

    @property
    def ollama(self) -> OllamaClient:
        """The first (without `ollama.hosts`, the only) Ollama host's client."""
        return self.pool.primary.client

    @ollama.setter
    def ollama(self, client: OllamaClient) -> None:  # tests swap in a client with their own clock
        self.pool.primary.client = client

    @classmethod
    def create(cls, config: AppConfig, *, classify: bool = True) -> Services:
        """Build every collaborator from `config`; no network I/O but PostgreSQL's, if configured.

        With MODELYARD_DATABASE_URL the usage store connects here, so an unusable URL fails at start-up.

        `classify=False` for commands that route no request (`models`, `warm`): the classifier's
        embedding model and learned layers are then never loaded.
        """
        usage = open_usage_store(config)  # usage.db, or the shared table on PostgreSQL
        pool = OllamaPool(config.ollama, last_used=usage.last_used)
        ollama = pool.primary.client
        return cls(
            config=config,
            pool=pool,
            cloud=CloudModels(config),
            validators=Validators(config.validation),
            usage=usage,
            classifier=TaskClassifier(config, ollama, learn=classify),
            health=HealthBook(
                config.data_dir, config.ollama.cooldown, secrets=config.secrets.secret_values()
            ),
        )

    async def aclose(self) -> None:
        """Release connections, worker processes and database handles.

        Every part is closed even when an earlier one fails (the Mermaid worker is a process);
        the first failure is raised afterwards.
        """
        self.usage.close()
        failure: Exception | None = None
        for close in (self.validators.aclose, self.pool.aclose, self.cloud.aclose):
            try:
                await close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
