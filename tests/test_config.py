"""The config loader: the default table, environment overrides, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config, normalise_ollama_host
from providers.ollama_http import keep_alive_seconds


def test_default_table_routes_the_seed_models(tmp_path: Path) -> None:
    config = load_config(env={"MODELYARD_DATA_DIR": str(tmp_path)})
    assert config.route("mermaid").model == "mermaid-mistral"
    assert config.route("erd").model == "mermaid-mistral"
    assert config.route("architecture").model == "mermaid-mistral"
    assert config.route("html").model == "codellama:13b-instruct-q4_K_M"
    assert config.route("documentation").model == "codellama:13b-instruct-q4_K_M"
    assert config.route("jira").model == "llama3:8b-instruct-q4_K_M"
    assert config.route("planning").model == "llama3:8b-instruct-q4_K_M"
    assert config.ollama.base_url == "http://localhost:11434"
    assert (config.ollama.timeout, config.ollama.max_retries) == (120, 2)
    assert config.data_dir == tmp_path
    assert config.fallback.order() == ("gemini", "openai")


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "OLLAMA_HOST": "127.0.0.1:9999",
        "MODELYARD_DATA_DIR": str(tmp_path / "d"),
        "GOOGLE_API_KEY": "g-key-123456789",
        "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
    }
    config = load_config(env=env)
    assert config.ollama.base_url == "http://127.0.0.1:9999"
    assert config.data_dir == tmp_path / "d"
    assert config.secrets.openai_base_url == "http://127.0.0.1:1/v1"
    assert config.secrets.secret_values() == ("g-key-123456789",)
    assert "g-key" not in repr(config) and "g-key" not in config.model_dump_json()


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("routing:\n  default_task: x\n  tasks:\n    x: {model: tiny, validator: code}\n")
    config = load_config(env={"MODELYARD_CONFIG": str(path), "MODELYARD_DATA_DIR": str(tmp_path)})
    assert config.source == path
    assert config.route("x").model == "tiny"


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("localhost", "http://localhost:11434"),
        ("0.0.0.0:8080", "http://0.0.0.0:8080"),
        ("http://gpu-box:11434/", "http://gpu-box:11434"),
        ("https://ollama.example", "https://ollama.example:443"),
        ("[::1]:11434", "http://[::1]:11434"),
    ],
)
def test_ollama_host_follows_ollamas_convention(host: str, url: str) -> None:
    assert normalise_ollama_host(host) == url


@pytest.mark.parametrize(
    ("yaml_text", "key", "expected"),
    [
        (
            "routing:\n  default_task: x\n  tasks:\n    x: {model: m, validator: svg}\n",
            "routing.tasks.x.validator",
            "'mermaid'",
        ),
        (
            "ollama:\n  timeout: soon\nrouting: {default_task: x, tasks: {x: {model: m, validator: code}}}\n",
            "ollama.timeout",
            "'soon'",
        ),
        (
            "ollama:\n  timout: 5\nrouting: {default_task: x, tasks: {x: {model: m, validator: code}}}\n",
            "ollama.timout",
            "Extra inputs",
        ),
        (
            "routing: {default_task: y, tasks: {x: {model: m, validator: code}}}\n",
            "routing.default_task",
            "'y' is not one of the tasks (x)",
        ),
        (
            "fallback: {cloud_provider: claude}\nrouting: {default_task: x, tasks: {x: {model: m, validator: code}}}\n",
            "fallback.cloud_provider",
            "'gemini' or 'openai'",
        ),
        ("ollama: {base_url: x}\n", "routing", "Field required"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, yaml_text: str, key: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert f"  {key}:" in message
    assert expected in message


def test_unreadable_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("routing: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken, env={})
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml", env={})
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml", env={})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("10s", 10.0),
        (300, 300.0),
        ("0", 0.0),
        ("-1", float("inf")),
        ("-1m", float("inf")),
        ("500ms", 0.5),
    ],
)
def test_keep_alive_is_read_like_ollama(value: str | int, seconds: float) -> None:
    assert keep_alive_seconds(value) == seconds
