"""`modelyard models`: each local model, its tasks and state; `--watch` keeps it on screen."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

from config.schema import AppConfig
from ui import models_add_cmd
from ui.render import ollama_problem, overview_table

EXIT_OK, EXIT_UNAVAILABLE = 0, 1
_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: what `watch` does between frames


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `models` and its `add` subcommand."""
    cmd = sub.add_parser("models", help="each local model: tasks, status, memory, cool-down, load time")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.add_argument("--watch", action="store_true", help="refresh the view until interrupted")
    cmd.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (--watch)")
    cmd.add_argument("--count", type=int, default=None, help="stop after this many refreshes (--watch)")
    models_add_cmd.add_parser(cmd.add_subparsers(dest="models_command", metavar="{add}"))


def run(config: AppConfig, args: argparse.Namespace) -> int:
    """List (once, or refreshed with --watch), or dispatch `models add`."""
    if getattr(args, "models_command", None) == "add":
        return models_add_cmd.run(config, args)
    if args.interval <= 0 or (args.count is not None and args.count < 1):
        print("modelyard: --interval must be positive and --count at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_models(config, args))


async def _models(config: AppConfig, args: argparse.Namespace) -> int:
    from graph.overview import models_overview
    from services import Services

    services = Services.create(config, classify=False)
    code = EXIT_OK
    try:
        frames = 0
        while True:
            overview = await models_overview(services)
            code = EXIT_UNAVAILABLE if overview.error else EXIT_OK
            if args.json:
                print(json.dumps(overview.to_dict(), indent=None if args.watch else 2), flush=True)
            else:
                if args.watch:
                    stamp = datetime.now().strftime("%H:%M:%S")
                    print(f"{_CLEAR}modelyard models at {stamp} (every {args.interval:g} s; Ctrl-C stops)")
                if overview.error:
                    print(ollama_problem(overview.ollama_url, overview.error), file=sys.stderr)
                print(overview_table(overview), flush=True)
            frames += 1
            if not args.watch or (args.count is not None and frames >= args.count):
                return code
            await asyncio.sleep(args.interval)
    finally:
        await services.aclose()
