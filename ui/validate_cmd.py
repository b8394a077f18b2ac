"""`modelyard validate`: check a file or stdin with exactly the validators the graph uses."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from config.schema import AppConfig

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `validate` command to the CLI's subparsers."""
    cmd = subparsers.add_parser(
        "validate",
        help="validate an artifact (file or stdin) as the graph would",
        description="Extract the artifact (fences, chatter) and check it with the task type's validator. "
        "Exit 0 when valid, 1 when invalid, 2 on a usage error.",
    )
    cmd.add_argument("--task", required=True, help="task type whose validator to use (erd, html, jira, ...)")
    cmd.add_argument("file", nargs="?", default="-", help="file to check; - or nothing reads stdin")
    cmd.add_argument("--request", help="the request it answers (may name a language or allow CDN scripts)")
    cmd.add_argument(
        "--json", action="store_true", help="print {valid, error, diagram_type, artifact} as JSON"
    )
    return cmd


def run(config: AppConfig, args: argparse.Namespace) -> int:
    """Run `validate` and return its exit code."""
    if args.task not in config.routing.tasks:
        known = ", ".join(config.routing.tasks)
        print(f"modelyard: unknown task type {args.task!r}; expected one of: {known}", file=sys.stderr)
        return EXIT_USAGE
    try:
        text = sys.stdin.read() if args.file == "-" else _read(args.file)
    except OSError as exc:
        print(f"modelyard: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    verdict = asyncio.run(_check(config, args.task, text, args.request))
    if args.json:
        shown = {k: verdict[k] for k in ("valid", "error", "diagram_type", "artifact")}
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    elif verdict["valid"]:
        print(verdict["artifact"])
    else:
        details = f"\n{verdict['details']}" if verdict.get("details") else ""
        print(f"invalid: {verdict['error']}{details}", file=sys.stderr)
    if verdict.get("warning"):
        print(f"warning: {verdict['warning']}", file=sys.stderr)
    return EXIT_VALID if verdict["valid"] else EXIT_INVALID


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


async def _check(config: AppConfig, task: str, text: str, request: str | None) -> dict[str, Any]:
    from validators import Validators  # the Node worker starts only when a diagram is checked

    route = config.route(task)
    async with Validators(config.validation) as validators:
        verdict = await validators.check(
            route.validator, text, expect_kind=route.expect_kind, request=request
        )
    result: dict[str, Any] = {
        "valid": verdict.valid,
        "error": verdict.error,
        "diagram_type": verdict.diagram_type,
        "artifact": verdict.artifact,
    }
    # Beyond the four documented keys, only when there is something to say.
    if verdict.details:
        result["details"] = verdict.details
    if verdict.warning:
        result["warning"] = verdict.warning
    return result
