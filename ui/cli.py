"""`modelyard`: ask for an artifact, inspect models, read the usage dashboard."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import NoReturn

from config.database_url import secret_values
from config.loader import ConfigError, load_config
from config.schema import AppConfig, UnknownTaskError
from database.errors import DatabaseUnavailableError
from nodes.prompt_check import BadPromptError, check_prompt
from ui import models_cmd, redaction, unload_cmd, validate_cmd, warm_cmd
from ui.render import stats_table, status_line
from usage.errors import UsageStoreError

# The graph and its SDKs are imported by the commands that need them: `stats` stays instant.

EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_NO_ARTIFACT = 0, 1, 2, 3
FIT_GRACE_S = 15  # the longest a first run waits for its fit to be cached (a cold fit: ~5 s)


def build_parser() -> argparse.ArgumentParser:
    """The command line: `ask`, `models` (and `models add`), `stats`, `validate`, `warm`, `unload`."""
    parser = argparse.ArgumentParser(prog="modelyard", description=__doc__)
    parser.add_argument(
        "--config",
        help="models.yaml to use (default: MODELYARD_CONFIG, else ~/.config/modelyard/models.yaml if "
        "it exists, else the packaged one)",
    )
    parser.add_argument("--data-dir", help="where checkpoints and usage stats live (MODELYARD_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="produce an artifact")
    ask.add_argument("prompt", help='the request, e.g. "ERD for a blog"; - reads it from standard input')
    ask.add_argument("--task", help="task type (default: classified from the prompt)")
    ask.add_argument("--local-only", action="store_true", help="never call a cloud model")
    ask.add_argument(
        "--within",
        type=_seconds,
        metavar="DURATION",
        help="latency budget, e.g. 20s or 1m: a cold model that loads slower here gives way to a warm "
        "alternate or the cloud (default: the task's latency_budget_s)",
    )
    ask.add_argument("--json", action="store_true", help="print the response as one JSON object")
    ask.add_argument("--thread", help="continue the conversation with this id")
    ask.add_argument("-q", "--quiet", action="store_true", help="no status lines or tokens on stderr")
    models_cmd.add_parser(sub)
    stats = sub.add_parser("stats", help="per-model usage, and quality by model and task type")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument(
        "--quality", action="store_true", help="with --json: quality rows per model and task type"
    )
    validate_cmd.add_parser(sub)
    warm_cmd.add_parser(sub)
    unload_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `modelyard` script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        config = load_config(args.config, data_dir=args.data_dir)
        redaction.install(secret_values(config))  # cloud keys and the database password
        if args.command == "ask":
            args.prompt = check_prompt(_read_prompt(args.prompt), config.routing.max_prompt_bytes)
            config.check_task(args.task)  # refused before the graph is even imported
            _start_mermaid_early(config, args.task)
            return asyncio.run(_ask(config, args))
        if args.command == "models":
            return models_cmd.run(config, args)
        if args.command == "validate":
            _start_mermaid_early(config, args.task)
            return validate_cmd.run(config, args)
        if args.command == "warm":
            return warm_cmd.run(config, args)
        if args.command == "unload":
            return unload_cmd.run(config, args)
        return _stats(config, args.json, args.quality)
    except (ConfigError, UnknownTaskError, BadPromptError, DatabaseUnavailableError) as exc:
        print(f"modelyard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageStoreError, sqlite3.Error, OSError) as exc:  # the data dir: read-only, locked, full
        logging.getLogger(__name__).debug("storage failure", exc_info=True)
        if isinstance(exc, UsageStoreError) and str(exc).startswith("PostgreSQL at"):
            print(f"modelyard: {exc}", file=sys.stderr)  # the shared database, not the data directory
            return EXIT_USAGE
        print(f"modelyard: cannot use the data directory ({_storage_problem(exc)})", file=sys.stderr)
        print("  check its permissions and free space, or choose another with --data-dir", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _start_mermaid_early(config: AppConfig, task: str | None) -> None:
    """Start the Mermaid checker now when the task is known to need it.

    Node and mermaid take about a second to load: begun here, that overlaps the graph's own
    imports instead of following them. A task left to the classifier starts it later, as the app does.
    """
    route = config.routing.tasks.get(task or "")
    if route is not None and route.validator == "mermaid":
        from validators.mermaid_pool import shared_worker

        shared_worker(config.validation.node).start_soon(config.validation.mermaid_start_timeout)


def _seconds(text: str) -> float:
    """`20`, `20s`, `1.5m` or `1h` as seconds (argparse turns the ValueError into a usage error)."""
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:].lower())
    number = text[:-1] if scale is not None else text
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 20s, 1.5m or 90") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a latency budget must be more than 0 s")
    return value


def _read_prompt(prompt: str) -> str:
    """The prompt argument, or standard input for `-` (decoded strictly: bad bytes are refused)."""
    if prompt != "-":
        return prompt
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPromptError(
            f"the prompt is not valid UTF-8 (byte {exc.start + 1} of standard input); "
            "re-save or re-type it as UTF-8"
        ) from None


def _storage_problem(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


async def _ask(config: AppConfig, args: argparse.Namespace) -> int:
    from graph.router import ModelRouter
    from nodes.response import ModelResponse

    async with ModelRouter(config) as router:
        router.check_task(args.task)
        response: ModelResponse | None = None
        streaming = False
        async for item in router.stream(
            args.prompt,
            task_type=args.task,
            thread_id=args.thread,
            force_local=args.local_only or None,
            latency_budget_s=args.within,
        ):
            if isinstance(item, ModelResponse):
                response = item
            elif args.quiet:
                continue
            elif item["kind"] == "token":
                if not args.json:
                    sys.stderr.write(item["text"])
                    sys.stderr.flush()
                    streaming = True
            else:
                if streaming:
                    sys.stderr.write("\n")
                    streaming = False
                print(status_line(item), file=sys.stderr, flush=True)
        classifier = router.services.classifier
    assert response is not None
    if response.warning and not args.quiet:
        print(f"! {response.warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(response.to_dict(), indent=2))
    elif response.content:
        print(response.content)
    code = EXIT_OK if response.ok else EXIT_NO_ARTIFACT
    if response.content and not response.checked:
        # Nothing could check it (no parser for its language): delivered, and said so, not failed.
        if not args.quiet:
            print(f"! {response.error_message}", file=sys.stderr)
        code = EXIT_OK
    sys.stdout.flush()
    # A one-shot run on a machine where the understanding layers' fit is not cached yet lets the
    # fit finish and be cached, once, after the answer is out: a daemon thread killed at exit
    # would leave every later run to fit again. With the fit cached, nothing is waited for.
    from understanding.fitted import is_cached

    if not is_cached(config):
        await asyncio.to_thread(classifier.wait_ready, FIT_GRACE_S)
    return code


def _stats(config: AppConfig, as_json: bool, quality: bool = False) -> int:
    from ui.render import quality_table
    from usage.factory import open_usage_store

    settings = config.routing.quality
    with open_usage_store(config) as store:
        stats = [s.to_dict() for s in store.dashboard()]
        pairs = store.quality(settings.window)
    if as_json and quality:  # the pairs instead: the per-model list keeps its shape for scripts
        print(json.dumps([p.to_dict(settings) for p in pairs], indent=2))
    elif as_json:
        print(json.dumps(stats, indent=2))
    elif stats:
        print(stats_table(stats))
        if pairs:
            print(f"\nQuality by model and task type\n{quality_table(pairs, settings)}")
    else:
        print(f"No requests recorded yet in {store.where if config.database_url else config.data_dir}.")
    return EXIT_OK


def run() -> NoReturn:
    """The `modelyard` script: `main`, then an immediate exit with its code.

    When `main` returns, all a command owes is done: its output is written, every row committed,
    the Mermaid worker stopped. The interpreter's teardown of the ~2,000 modules a request
    imports (pydantic models, LangChain, LangGraph) would still cost ~0.3 s of every run, and
    people run `modelyard ask` and `validate` in loops and scripts.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # a reader that stopped early (| head): the output it took is whole
        pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
