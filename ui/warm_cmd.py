"""`modelyard warm [MODEL|TASK ...]`: load models before their first request."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from config.schema import AppConfig

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `warm`."""
    cmd = sub.add_parser(
        "warm",
        help="load models now (most used first, within the memory budget)",
        description="Load the named task types' models (or models named directly) so the first "
        "request does not wait; with no name, the config's ollama.warmup list. Most used first; a "
        "model that does not fit the budget beside what is loaded is skipped, never made room for. "
        "Exit 0 when every model is loaded (or skipped for the budget), 1 when one failed.",
    )
    cmd.add_argument("names", nargs="*", metavar="MODEL|TASK", help="default: ollama.warmup")
    cmd.add_argument("--json", action="store_true", help="print the results as JSON")


def run(config: AppConfig, args: argparse.Namespace) -> int:
    """Warm, printing each step on stderr and a line per model on stdout."""
    if not args.names and not config.ollama.warmup:
        print(
            f"modelyard: nothing to warm: name models or task types, or list them under ollama.warmup "
            f"in {config.source}",
            file=sys.stderr,
        )
        return EXIT_OK
    return asyncio.run(_warm(config, args))


async def _warm(config: AppConfig, args: argparse.Namespace) -> int:
    from graph.warming import warm_models
    from services import Services

    services = Services.create(config, classify=False)
    try:
        results = await warm_models(
            services, args.names, lambda _model, line: print(f"· {line}", file=sys.stderr)
        )
    finally:
        await services.aclose()
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for result in results:
            print(f"{result.outcome:8} {result.detail}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED
