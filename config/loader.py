"""Load `models.yaml` once, apply environment overrides, fail with file + key + expectation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import SecretStr, ValidationError

from config.database_url import ENV_VAR as DATABASE_URL_VAR
from config.database_url import DatabaseUrlError, parse_database_url
from config.schema import AppConfig, CloudSecrets, FileConfig, check_http_url

DEFAULT_CONFIG = Path(__file__).with_name("models.yaml")
OLLAMA_DEFAULT_PORT = 11434


class ConfigError(Exception):
    """A configuration problem the user must fix; the message says where and what."""


def default_data_dir(env: Mapping[str, str]) -> Path:
    """`MODELYARD_DATA_DIR`, else the XDG data home."""
    if env.get("MODELYARD_DATA_DIR"):
        return Path(env["MODELYARD_DATA_DIR"]).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "modelyard"


def user_config_path(env: Mapping[str, str]) -> Path | None:
    """`$XDG_CONFIG_HOME/modelyard/models.yaml`, else `$HOME/.config/modelyard/models.yaml`.

    Read from `env` alone (None when it has neither variable), so a caller's explicit env, a
    test's in particular, never picks up the config in the real home directory.
    """
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is ignored
        base = Path(xdg)
    elif env.get("HOME"):
        base = Path(env["HOME"]) / ".config"
    else:
        return None
    return base / "modelyard" / "models.yaml"


def normalise_ollama_host(host: str) -> str:
    """Accept OLLAMA_HOST the way Ollama does: `host`, `host:port` or a URL."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"http://{host}"
    parts = urlsplit(host)
    if not parts.hostname:
        raise ConfigError(f"OLLAMA_HOST: {host!r} has no host name")
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"OLLAMA_HOST: {host!r} must use http:// or https://")
    port = parts.port or (443 if parts.scheme == "https" else OLLAMA_DEFAULT_PORT)
    hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{hostname}:{port}{parts.path}"


def load_config(
    path: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> AppConfig:
    """Read the YAML at `path` into an AppConfig.

    Without `path`: MODELYARD_CONFIG, else the user's config file (`user_config_path`) when it
    exists, else the packaged default.
    """
    env = os.environ if env is None else env
    source = Path(path or env.get("MODELYARD_CONFIG") or _user_file(env) or DEFAULT_CONFIG).expanduser()
    file_config = _parse_file(source)
    ollama = file_config.ollama
    if env.get("OLLAMA_HOST"):
        ollama = ollama.model_copy(update={"base_url": normalise_ollama_host(env["OLLAMA_HOST"])})
    return AppConfig(
        source=source,
        data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(env),
        ollama=ollama,
        routing=file_config.routing,
        validation=file_config.validation,
        fallback=file_config.fallback,
        secrets=_secrets(env),
        database_url=_database_url(env),
    )


def _user_file(env: Mapping[str, str]) -> Path | None:
    path = user_config_path(env)
    return path if path is not None and path.is_file() else None


def _parse_file(source: Path) -> FileConfig:
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found (set MODELYARD_CONFIG)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from None


def _describe(source: Path, exc: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if message.startswith("expect_kind: ") or message.startswith("default_task: "):
            field, _, message = message.partition(": ")  # a cross-field check names its own key
            key = f"{key}.{field}"
            got = ""
        else:
            got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        lines.append(f"  {key}: {message}{got}")
    return "\n".join(lines)


def _secrets(env: Mapping[str, str]) -> CloudSecrets:
    def secret(name: str) -> SecretStr | None:
        value = env.get(name, "").strip()
        return SecretStr(value) if value else None

    return CloudSecrets(
        google_api_key=secret("GOOGLE_API_KEY"),
        openai_api_key=secret("OPENAI_API_KEY"),
        openai_base_url=_url(env, "OPENAI_BASE_URL"),
        gemini_base_url=_url(env, "GOOGLE_GEMINI_BASE_URL"),
    )


def _database_url(env: Mapping[str, str]) -> str | None:
    """MODELYARD_DATABASE_URL, checked now (scheme, host, database) so a typo stops start-up."""
    value = env.get(DATABASE_URL_VAR, "").strip()
    if not value:
        return None
    try:
        parse_database_url(value)
    except DatabaseUrlError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return check_http_url(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc} (got {value!r})") from None
