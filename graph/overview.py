"""What `modelyard models` and the UI's status panel show: each task type's model and its state."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from providers.errors import ProviderError
from providers.ollama_http import canonical
from services import Services


@dataclass(frozen=True)
class ModelRow:
    """One task type and the live state of its local model."""

    task_type: str
    model: str
    installed: bool | None
    status: str
    size: int | None
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return data


@dataclass(frozen=True)
class Overview:
    """Every task type's row, or why Ollama could not be asked."""

    rows: list[ModelRow]
    ollama_url: str
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ollama_url": self.ollama_url,
            "error": self.error,
            "models": [r.to_dict() for r in self.rows],
        }


async def models_overview(services: Services) -> Overview:
    """Ask Ollama once for installed and loaded models and join them with the routing table."""
    ollama = services.ollama
    tasks = services.config.routing.tasks
    try:
        installed, loaded = await asyncio.gather(ollama.list_available_models(), ollama.list_loaded_models())
    except ProviderError as exc:
        rows = [ModelRow(t, r.model, None, "error", None, None) for t, r in tasks.items()]
        return Overview(rows, ollama.base_url, exc.message)
    sizes = {m.name: m.size for m in installed}
    expiry = {m.name: m.expires_at for m in loaded}
    rows = []
    for task, route in tasks.items():
        name = canonical(route.model)
        rows.append(
            ModelRow(
                task_type=task,
                model=route.model,
                installed=name in sizes,
                status=ollama.status_from(name, loaded).value,
                size=sizes.get(name),
                expires_at=expiry.get(name),
            )
        )
    return Overview(rows, ollama.base_url, None)
