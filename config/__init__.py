"""Configuration: the default routing table and its typed loader."""

from config.loader import DEFAULT_CONFIG, ConfigError, load_config, normalise_ollama_host
from config.schema import (
    AppConfig,
    CloudProviderName,
    CloudSecrets,
    TaskRoute,
    UnknownTaskError,
    ValidatorName,
)

__all__ = [
    "DEFAULT_CONFIG",
    "AppConfig",
    "CloudProviderName",
    "CloudSecrets",
    "ConfigError",
    "TaskRoute",
    "UnknownTaskError",
    "ValidatorName",
    "load_config",
    "normalise_ollama_host",
]
