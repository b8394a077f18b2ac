"""The failure vocabulary shared by every layer.

    ProviderError(reason, message)          raised at a provider boundary, never past a node
    ├── reason "server_down"        Ollama refused or did not accept the connection
    ├── reason "not_installed"      Ollama answered 404 for the model (and pulling is off or failed)
    ├── reason "load_failed"        Ollama could not load the model (memory, GPU, runner crash)
    ├── reason "timeout"            no first token / no completion within the configured limits
    └── reason "generation_error"   an error reply or an {"error": ...} line mid-stream; cloud errors

`invalid_output` is not raised: validation returns it as a verdict. Every fallback reason
in state, stats, UI and logs is one of `FALLBACK_REASONS`.
"""

from __future__ import annotations

from config.redaction import redact
from config.vocabulary import FALLBACK_REASONS, FallbackReason

__all__ = ["FALLBACK_REASONS", "REASON_TEXT", "FallbackReason", "ProviderError", "redact"]

REASON_TEXT: dict[str, str] = {
    "server_down": "Ollama is not reachable",
    "not_installed": "model not installed",
    "load_failed": "model failed to load",
    "timeout": "model timed out",
    "generation_error": "generation failed",
    "invalid_output": "output failed validation",
}


class ProviderError(Exception):
    """A provider failed in a way the graph turns into a fallback reason."""

    def __init__(self, reason: FallbackReason, message: str, status_code: int | None = None):
        super().__init__(message)
        self.reason: FallbackReason = reason
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
