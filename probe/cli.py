"""Command line: run | once | check-config | demo | gate (and feature commands)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from probe import __version__
from probe.config import Config, ConfigError, load_config
from probe.secrets import Redactor, install_log_redaction

DEFAULT_CONFIG = os.environ.get("RUNPOD_PROBE_CONFIG", "config.yaml")
EXIT_OK, EXIT_FAILING, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_CONFIG
    return int(args.handler(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runpod-probe", description="Health probing and "
                                     "observability for LLM endpoints on RunPod.")
    parser.add_argument("--version", action="version", version=f"runpod-probe {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("RUNPOD_PROBE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command")

    def command(name: str, handler: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: "
                       "$RUNPOD_PROBE_CONFIG or ./config.yaml)")
        p.set_defaults(handler=handler)
        return p

    command("run", cmd_run, "Run the daemon: probe on schedule, store, export metrics.")
    once = command("once", cmd_once, "Probe every endpoint once and print the results.")
    once.add_argument("--endpoint", help="only this endpoint")
    once.add_argument("--json", action="store_true", help="print JSON")
    once.add_argument("--store", action="store_true", help="also write results to the database")
    command("check-config", cmd_check_config, "Validate the config; exit 0 if it is valid.")
    for add_parser in feature_commands():
        add_parser(sub, command)
    return parser


def feature_commands() -> list[Any]:
    """Each feature module's ``add_parser(sub, command)``: one line per feature."""
    from probe import demo, gate
    from probe.discovery import cli as discovery_cli
    from probe.export import cli as export_cli
    from probe.ledger import cli as ledger_cli

    return [demo.add_parser, discovery_cli.add_parser, export_cli.add_parser, gate.add_parser,
            ledger_cli.add_parser]


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Skipped overlapping runs are counted in runpod_probe_skipped_runs_total instead.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def load_or_report(path: str) -> Config | None:
    """Load the config, or print every problem (one line each) to stderr."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"runpod-probe: invalid config {path}:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return None
    install_log_redaction(Redactor(config.secret_env_names()))
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.config}: ok ({len(config.endpoints)} endpoints)")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    from probe.daemon import Daemon

    async def _main() -> None:
        await Daemon(config).run(asyncio.Event())

    asyncio.run(_main())
    return EXIT_OK


def cmd_once(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return EXIT_CONFIG
    # a discovered endpoint is known only after discovery: the sweep finds it or nothing
    discovery = config.sections.get("discovery") is not None
    if args.endpoint and not discovery and args.endpoint not in {e.name for e in config.endpoints}:
        print(f'runpod-probe: no endpoint named "{args.endpoint}"', file=sys.stderr)
        return EXIT_CONFIG
    from probe.report import result_rows, table, to_json
    from probe.store import ResultStore
    from probe.sweep import sweep

    store = ResultStore(config.storage.path, Redactor(config.secret_env_names())) \
        if args.store else None
    try:
        results = asyncio.run(sweep(config, args.endpoint, store))
    finally:
        if store is not None:
            store.close()
    if args.endpoint and not results:
        print(f'runpod-probe: no endpoint named "{args.endpoint}"', file=sys.stderr)
        return EXIT_CONFIG
    print(to_json(results) if args.json else table(result_rows(results)))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILING
