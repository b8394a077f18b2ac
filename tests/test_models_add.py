"""`modelyard models add`: real config files in tmp_path, the Ollama emulator in-process."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from config import DEFAULT_CONFIG, AppConfig, ConfigError, editing, load_config
from config.loader import user_config_path
from tests.conftest import MERMAID, Rig, free_port
from tests.emulators.ollama import ModelSpec, OllamaEmulator
from ui.models_add_cmd import add_parser, run

NEW = "llama3.1:8b"
CLASSIFIER_COMMENT = "  classifier_model: null                 # e.g. llama3:8b-instruct-q4_K_M: asked only while already loaded\n"


def parse(*argv: str) -> argparse.Namespace:
    """The namespace the CLI hands to run(): `add` parsed as a subcommand, as `models` will."""
    parser = argparse.ArgumentParser(prog="modelyard models")
    add_parser(parser.add_subparsers(dest="models_command", required=True))
    return parser.parse_args(["add", *argv])


def config_at(path: Path | None, ollama_url: str, **env: str) -> AppConfig:
    return load_config(path, env={"OLLAMA_HOST": ollama_url, "MODELYARD_DATA_DIR": "/nonexistent", **env})


@pytest.fixture
def ollama_new(ollama: OllamaEmulator) -> OllamaEmulator:
    ollama.set_model(NEW, ModelSpec())
    return ollama


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A user's commented config: a copy of the packaged one."""
    copy = tmp_path / "conf" / "models.yaml"
    copy.parent.mkdir()
    shutil.copy(DEFAULT_CONFIG, copy)
    return copy


def backup_of(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def test_the_model_is_replaced_the_old_one_kept_and_every_comment_survives(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = path.read_text()
    assert run(config_at(path, ollama_new.url), parse(NEW, "--task", "mermaid")) == 0

    assert capsys.readouterr().out.strip() == (
        f"mermaid: model {MERMAID} -> {NEW} (previous kept as alternate); "
        f"wrote {path} (backup {backup_of(path)})"
    )
    assert backup_of(path).read_text() == before
    # The one change is the model line and the new alternates line after it: every other line,
    # each comment included, is as it was and where it was.
    old = before.splitlines(keepends=True)
    at = old.index("    mermaid:\n") + 1
    assert old[at] == f"      model: {MERMAID}\n"
    expected = [*old[:at], f"      model: {NEW}\n", f"      alternates: [{MERMAID}]\n", *old[at + 1 :]]
    assert path.read_text().splitlines(keepends=True) == expected
    assert expected.index(CLASSIFIER_COMMENT) == old.index(CLASSIFIER_COMMENT)

    route = load_config(path, env={}).route("mermaid")
    assert (route.model, route.alternates) == (NEW, (MERMAID,))
    assert sorted(p.name for p in path.parent.iterdir()) == ["models.yaml", "models.yaml.bak"]  # no temp file


def test_switching_back_keeps_each_alternate_once(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_at(path, ollama_new.url), parse(NEW, "--task", "erd")) == 0
    capsys.readouterr()
    # "mermaid-mistral:latest" is Ollama's spelling of the model the alternates already hold.
    assert run(config_at(path, ollama_new.url), parse(f"{MERMAID}:latest", "--task", "erd", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "task": "erd",
        "change": "model",
        "name": f"{MERMAID}:latest",
        "model": f"{MERMAID}:latest",
        "previous": NEW,
        "alternates": [NEW],
        "path": str(path),
        "backup": str(backup_of(path)),
        "copied_from": None,
        "warnings": [],
    }
    route = load_config(path, env={}).route("erd")
    assert (route.model, route.alternates) == (f"{MERMAID}:latest", (NEW,))


def test_as_alternate_appends_once(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_at(path, ollama_new.url)
    assert run(config, parse(NEW, "--task", "code", "--as-alternate")) == 0
    assert (
        "code: llama3.1:8b added as an alternate of codellama:13b-instruct-q4_K_M" in capsys.readouterr().out
    )
    route = load_config(path, env={}).route("code")
    assert (route.model, route.alternates) == ("codellama:13b-instruct-q4_K_M", (NEW,))

    after = path.read_bytes()
    assert run(config, parse(NEW, "--task", "code", "--as-alternate")) == 0
    assert "is an alternate already" in capsys.readouterr().out
    assert path.read_bytes() == after  # nothing to do: nothing written


def test_a_model_ollama_lacks_is_refused_and_the_file_left_as_it_was(
    ollama: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = path.read_bytes()
    assert run(config_at(path, ollama.url), parse("mistral", "--task", "mermaid")) == 1
    err = capsys.readouterr().err
    assert "mistral is not installed in Ollama" in err and "ollama pull mistral" in err
    assert path.read_bytes() == before
    assert not backup_of(path).exists()


def test_ollama_down_names_the_url(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"127.0.0.1:{free_port()}"
    before = path.read_bytes()
    assert run(config_at(path, url), parse(NEW, "--task", "mermaid")) == 1
    assert f"Ollama is not reachable at http://{url}" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_an_unknown_task_is_a_usage_error_before_ollama_is_asked(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = path.read_bytes()
    assert run(config_at(path, ollama_new.url), parse(NEW, "--task", "poem")) == 2
    err = capsys.readouterr().err
    assert "unknown task type 'poem'; expected one of: mermaid, diagram, erd" in err
    assert "--create-task --validator" in err
    assert path.read_bytes() == before
    assert not [r for r in ollama_new.requests if r.path == "/api/tags"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "poem", "--create-task"], "--create-task needs --validator"),
        (["--task", "mermaid", "--create-task", "--validator", "mermaid"], "exists already"),
        (["--task", "mermaid", "--validator", "mermaid"], "add --create-task"),
        (["--task", "poem", "--create-task", "--validator", "code", "--as-alternate"], "drop --as-alternate"),
    ],
)
def test_usage_errors(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = path.read_bytes()
    assert run(config_at(path, ollama_new.url), parse(NEW, *argv)) == 2
    assert message in capsys.readouterr().err
    assert path.read_bytes() == before


def test_create_task_appends_it_and_warns_about_too_few_examples(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--task", "poem", "--create-task", "--validator", "documentation", "--keyword", "poem"]
    argv += ["--example", "a sonnet about autumn", "--example", "a haiku on rain"]
    assert run(config_at(path, ollama_new.url), parse(NEW, *argv)) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("poem: new task type, model llama3.1:8b; wrote")
    assert "poem has 2 examples" in captured.err and "at least 8" in captured.err

    config = load_config(path, env={})
    route = config.route("poem")
    assert (route.model, route.validator, route.keywords) == (NEW, "documentation", ("poem",))
    assert route.examples == ("a sonnet about autumn", "a haiku on rain")
    assert list(config.routing.tasks)[-1] == "poem"
    # The blank line that closed the task list still closes it, before `validation:`.
    text = path.read_text()
    assert '        - "quarter plan for the data team with milestones"\n    poem:\n' in text
    assert "        - a haiku on rain\n\nvalidation:\n" in text


def test_the_packaged_config_is_copied_to_the_user_config_which_is_then_read(
    ollama_new: OllamaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("MODELYARD_CONFIG", raising=False)
    packaged = DEFAULT_CONFIG.read_bytes()
    config = config_at(None, ollama_new.url, XDG_CONFIG_HOME=str(xdg))
    assert config.source == DEFAULT_CONFIG

    assert run(config, parse(NEW, "--task", "jira")) == 0
    user = xdg / "modelyard" / "models.yaml"
    assert f"wrote {user} (a copy of the packaged config" in capsys.readouterr().out
    assert DEFAULT_CONFIG.read_bytes() == packaged
    assert not backup_of(user).exists()  # there was nothing to back up
    assert user.read_text().startswith("# modelyard's default routing table.")

    again = load_config(env={"XDG_CONFIG_HOME": str(xdg)})
    assert again.source == user and again.route("jira").model == NEW
    # An explicit path and MODELYARD_CONFIG still come first.
    assert load_config(DEFAULT_CONFIG, env={"XDG_CONFIG_HOME": str(xdg)}).source == DEFAULT_CONFIG
    env = {"XDG_CONFIG_HOME": str(xdg), "MODELYARD_CONFIG": str(DEFAULT_CONFIG)}
    assert load_config(env=env).source == DEFAULT_CONFIG

    # The packaged config named explicitly while the user's copy exists: that copy is not overwritten.
    assert run(config, parse(NEW, "--task", "tasks")) == 2
    assert f"{user} exists" in capsys.readouterr().err


def test_user_config_path() -> None:
    assert user_config_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path("/x/modelyard/models.yaml")
    assert user_config_path({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/modelyard/models.yaml"
    )
    assert user_config_path({}) is None  # an explicit env never reaches the real home directory


def test_a_result_that_would_not_load_is_refused_and_nothing_written(
    ollama_new: OllamaEmulator, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_at(path, ollama_new.url)
    # Someone breaks the file after modelyard loaded it: the edit must not make it current.
    broken = path.read_text().replace("max_prompt_bytes: 100000", "max_prompt_bytes: -1")
    path.write_text(broken)
    assert run(config, parse(NEW, "--task", "mermaid")) == 2
    err = capsys.readouterr().err
    assert "would not load, nothing written" in err
    assert f"{path}: invalid configuration" in err and "routing.max_prompt_bytes" in err
    assert path.read_text() == broken
    assert sorted(p.name for p in path.parent.iterdir()) == ["models.yaml"]  # no backup, no temp file


def test_write_config_refuses_a_text_that_would_not_load(path: Path) -> None:
    before = path.read_bytes()
    doc = editing.load_document(path.read_text())
    editing.set_model(doc, "html", "")  # the schema wants a model name
    with pytest.raises(ConfigError, match=r"routing\.tasks\.html\.model"):
        editing.write_config(path, editing.dump_document(doc))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["models.yaml"]


def test_a_symlinked_config_is_written_through(path: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    doc = editing.load_document(link.read_text())
    editing.add_alternate(doc, "html", NEW)
    editing.write_config(link, editing.dump_document(doc))
    assert link.is_symlink()
    assert load_config(path, env={}).route("html").alternates == (NEW,)


async def test_a_rerouted_router_serves_the_new_model_at_once(rig: Rig) -> None:
    from graph.router import ModelRouter

    config = rig.config()
    tasks = dict(config.routing.tasks)
    tasks["erd"] = tasks["erd"].model_copy(
        update={"model": "llama3:8b-instruct-q4_K_M", "alternates": ("mermaid-mistral",)}
    )
    moved = config.model_copy(update={"routing": config.routing.model_copy(update={"tasks": tasks})})
    rig.ollama.update_model("llama3:8b-instruct-q4_K_M", reply=rig.ollama.model("mermaid-mistral").reply)
    async with ModelRouter(config) as router:
        assert (await rig.ask_with(router, "ERD for a blog")).model_used == "mermaid-mistral"
        router.reroute(moved)
        assert (await rig.ask_with(router, "ERD for a shop")).model_used == "llama3:8b-instruct-q4_K_M"
        learned = {**tasks, "erd": tasks["erd"].model_copy(update={"keywords": ("schema",)})}
        changed = config.model_copy(update={"routing": config.routing.model_copy(update={"tasks": learned})})
        with pytest.raises(ValueError, match="restart modelyard"):
            router.reroute(changed)  # what the classifier learned changed: not swapped live
