"""`modelyard models add`: route a task type to an installed Ollama model without editing YAML."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from config.loader import DEFAULT_CONFIG, ConfigError, user_config_path
from config.schema import AppConfig, ValidatorName

EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2
VALIDATORS: tuple[str, ...] = get_args(ValidatorName)
# The semantic classifier learns a task type from its examples; config/models.yaml asks a new
# type for at least this many. load_config does not enforce it (a type without examples is
# still reached by --task or its keywords), so fewer only warns.
MIN_EXAMPLES = 8
_TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class AddRefused(Exception):
    """Stop with this message and exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `add` command to the `models` command's subparsers."""
    cmd = subparsers.add_parser(
        "add",
        help="route a task type to an installed Ollama model",
        description="Make NAME (a model Ollama has installed) the model of task type TYPE in the "
        "config in use, keeping the previous one as an alternate; with --as-alternate, add it as an "
        "alternate only. The packaged config is never edited: it is copied to the user config file "
        "first, which modelyard then reads. Exit 0 when done, 1 when Ollama cannot be reached or "
        "lacks the model, 2 on a usage error or a result that would not load.",
    )
    cmd.add_argument("name", metavar="NAME", help="an installed Ollama model, e.g. llama3.1:8b")
    cmd.add_argument("--task", required=True, metavar="TYPE", help="the task type, e.g. mermaid")
    cmd.add_argument("--as-alternate", action="store_true", help="add NAME to the task's alternates")
    cmd.add_argument("--create-task", action="store_true", help="TYPE is a new task type (needs --validator)")
    cmd.add_argument("--validator", choices=VALIDATORS, help="how a new task's output is checked")
    cmd.add_argument(
        "--example",
        dest="examples",
        action="append",
        default=[],
        metavar="TEXT",
        help=f"an example request of the new task type (repeatable; {MIN_EXAMPLES}+ teach the classifier)",
    )
    cmd.add_argument(
        "--keyword", dest="keywords", action="append", default=[], metavar="WORD", help="a new task's keyword"
    )
    cmd.add_argument("--json", action="store_true", help="print what changed as one JSON object")
    return cmd


def run(config: AppConfig, args: argparse.Namespace) -> int:
    """Run `models add` and return its exit code."""
    try:
        report = _add(config, args, os.environ)
    except AddRefused as exc:
        print(f"modelyard: {exc}", file=sys.stderr)
        return exc.code
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_describe(report))
        for warning in report["warnings"]:
            print(f"! {warning}", file=sys.stderr)
    return EXIT_OK


def add_model(
    config: AppConfig, name: str, task: str, *, as_alternate: bool = False
) -> tuple[dict[str, Any], str]:
    """`models add NAME --task TASK` for the chat's panel: the report and its one-line description.

    Blocking (file and network I/O): async callers run it in a worker thread. Raises AddRefused.
    """
    args = argparse.Namespace(
        name=name,
        task=task,
        as_alternate=as_alternate,
        create_task=False,
        validator=None,
        examples=[],
        keywords=[],
    )
    report = _add(config, args, os.environ)
    return report, _describe(report)


def _add(config: AppConfig, args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    from config import editing  # ruamel.yaml: only when `models add` runs

    name, task = args.name.strip(), args.task.strip()
    _check_usage(args, name, task)
    source = config.source
    target, copied = _target(source, env)
    try:
        doc = editing.load_document(source.read_text(encoding="utf-8"))
        known = editing.task_names(doc)
    except (OSError, editing.EditError) as exc:
        raise AddRefused(f"{source}: {exc}", EXIT_USAGE) from None
    if args.create_task and task in known:
        raise AddRefused(
            f"task type {task!r} exists already; drop --create-task to change its model", EXIT_USAGE
        )
    if not args.create_task and task not in known:
        raise AddRefused(
            f"unknown task type {task!r}; expected one of: {', '.join(known)} "
            f"(a new one: --create-task --validator {{{','.join(VALIDATORS)}}})",
            EXIT_USAGE,
        )
    # Usage first, then Ollama: a typo is reported without a network round trip.
    problem = asyncio.run(_not_installed(config, name))
    if problem is not None:
        raise AddRefused(problem, EXIT_UNAVAILABLE)

    try:
        if args.create_task:
            edit = editing.add_task(
                doc, task, name, validator=args.validator, examples=args.examples, keywords=args.keywords
            )
        elif args.as_alternate:
            edit = editing.add_alternate(doc, task, name)
        else:
            edit = editing.set_model(doc, task, name)
    except editing.EditError as exc:
        raise AddRefused(f"{source}: {exc}", EXIT_USAGE) from None

    backup = None
    if edit.change != "none":
        try:
            backup = editing.write_config(target, editing.dump_document(doc), backup=not copied)
        except ConfigError as exc:
            raise AddRefused(
                f"refused: the edited config would not load, nothing written\n{exc}", EXIT_USAGE
            ) from None
        except OSError as exc:
            raise AddRefused(f"cannot write {target}: {exc.strerror or exc}", EXIT_UNAVAILABLE) from None
    return {
        "task": edit.task,
        "change": edit.change,
        "name": name,
        "model": edit.model,
        "previous": edit.previous,
        "alternates": list(edit.alternates),
        "path": str(target if edit.change != "none" else source),
        "backup": str(backup) if backup else None,
        "copied_from": str(source) if copied and edit.change != "none" else None,
        "warnings": _warnings(args, task, env, copied and edit.change != "none"),
    }


def _check_usage(args: argparse.Namespace, name: str, task: str) -> None:
    if not name:
        raise AddRefused("name the model to add, e.g. llama3.1:8b", EXIT_USAGE)
    if args.create_task:
        if args.validator is None:
            raise AddRefused(f"--create-task needs --validator, one of: {', '.join(VALIDATORS)}", EXIT_USAGE)
        if args.as_alternate:
            raise AddRefused("a new task has no model to keep: drop --as-alternate", EXIT_USAGE)
        if not _TASK_NAME.fullmatch(task):
            raise AddRefused(
                f"task type {task!r}: use letters, digits, '_', '-' or '.', e.g. release-notes", EXIT_USAGE
            )
    elif args.validator or args.examples or args.keywords:
        raise AddRefused(
            "--validator, --example and --keyword describe a new task: add --create-task", EXIT_USAGE
        )


def _target(source: Path, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to write, and whether it starts as a copy of the packaged config."""
    if source.resolve() != DEFAULT_CONFIG.resolve():
        return source, False
    # The packaged file may be read-only and is replaced by any upgrade: edit the user's copy.
    user = user_config_path(env)
    if user is None:
        raise AddRefused(
            "the packaged config is in use and there is no user config location (set HOME or "
            "XDG_CONFIG_HOME), or name a copy with --config",
            EXIT_USAGE,
        )
    if user.exists():  # only when --config or MODELYARD_CONFIG named the packaged file
        raise AddRefused(
            f"the config in use is the packaged one ({source}), but {user} exists; "
            f"to edit that one: modelyard --config {user} models add ...",
            EXIT_USAGE,
        )
    return user, True


async def _not_installed(config: AppConfig, name: str) -> str | None:
    """Why `name` cannot be added (Ollama down, or the model not installed); None when it can."""
    from config import editing  # ruamel.yaml: only when `models add` runs
    from providers.errors import ProviderError
    from providers.ollama import OllamaClient

    client = OllamaClient(config.ollama)
    try:
        installed = await client.list_available_models()
    except ProviderError as exc:
        where = "" if client.base_url in exc.message else f"Ollama at {client.base_url}: "
        return f"cannot check the model: {where}{exc.message}"
    finally:
        await client.aclose()
    if any(editing.same_model(m.name, name) for m in installed):
        return None
    return (
        f"{name} is not installed in Ollama at {client.base_url}; "
        f"install it with `ollama pull {name}`, then run this again"
    )


def _warnings(args: argparse.Namespace, task: str, env: Mapping[str, str], copied: bool) -> list[str]:
    warnings = []
    if args.create_task and len(args.examples) < MIN_EXAMPLES:
        reach = "--task and its keywords" if args.keywords else "--task"
        warnings.append(
            f"{task} has {len(args.examples)} examples: the classifier learns a task type from at "
            f"least {MIN_EXAMPLES} (routing.tasks.{task}.examples); until then only {reach} choose it"
        )
    if copied and (env.get("MODELYARD_CONFIG") or getattr(args, "config", None)):
        warnings.append(
            "--config or MODELYARD_CONFIG names the packaged config: drop it to use the edited copy"
        )
    return warnings


def _describe(report: dict[str, Any]) -> str:
    from config import editing  # ruamel.yaml: only when `models add` runs

    task, name, model, previous = report["task"], report["name"], report["model"], report["previous"]
    if report["change"] == "none":
        role = "its model" if editing.same_model(name, model) else "an alternate"
        return f"{task}: {name} is {role} already in {report['path']}; nothing written"
    if report["change"] == "model":
        what = f"{task}: model {previous} -> {model} (previous kept as alternate)"
    elif report["change"] == "alternate":
        what = f"{task}: {name} added as an alternate of {model}"
    else:
        what = f"{task}: new task type, model {model}"
    if report["copied_from"]:
        return f"{what}; wrote {report['path']} (a copy of the packaged config, read from now on)"
    return f"{what}; wrote {report['path']} (backup {report['backup']})"
