"""`modelyard unload`: free Ollama's memory now instead of waiting for keep_alive to expire."""

from __future__ import annotations

import argparse
import asyncio
import sys

from config.schema import AppConfig

EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `unload` command to the CLI's subparsers."""
    cmd = subparsers.add_parser(
        "unload",
        help="unload models from Ollama's memory now",
        description="Unload each named model (a task type names its model) or, with --all, every "
        "model Ollama has loaded. Exit 0 when done, 1 when Ollama cannot be reached, 2 on a usage error.",
    )
    cmd.add_argument(
        "models", nargs="*", help="model names or task types, e.g. codellama:13b-instruct-q4_K_M erd"
    )
    cmd.add_argument("--all", action="store_true", help="every model Ollama has loaded")
    return cmd


def run(config: AppConfig, args: argparse.Namespace) -> int:
    """Run `unload` and return its exit code."""
    if bool(args.models) == bool(args.all):
        print("modelyard: name the models to unload, or pass --all", file=sys.stderr)
        return EXIT_USAGE
    # A task type stands for its model: `modelyard unload erd` frees mermaid-mistral.
    names = [config.route(m).model if m in config.routing.tasks else m for m in args.models]
    return asyncio.run(_unload(config, list(dict.fromkeys(names)), every=args.all))


async def _unload(config: AppConfig, names: list[str], *, every: bool) -> int:
    from providers.errors import ProviderError
    from providers.ollama_http import canonical
    from providers.ollama_pool import OllamaPool

    pool = OllamaPool(config.ollama)
    try:
        if every:
            names = list(dict.fromkeys(m for models in (await pool.loaded()).values() for m in models))
            if not names:
                print("No model is loaded.")
        for name in names:
            hosts = await pool.unload(name)
            print(
                f"Unloaded {canonical(name)}"
                + ("" if pool.single else f" on {', '.join(hosts) or 'no host'}")
            )
    except ProviderError as exc:
        where = pool.primary.url if pool.single else "every host"
        print(f"modelyard: Ollama at {where}: {exc.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        await pool.aclose()
    return EXIT_OK
