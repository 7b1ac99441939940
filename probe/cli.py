"""Command line: run | once | check-config, and every feature's commands.

The parser is built here from the composition root's plugins (``probe.app``); each handler
gets its parsed arguments and the plugins. Nothing imports this module but ``__main__``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from probe import __version__
from probe.app import PLUGINS
from probe.commands import (
    EXIT_CONFIG,
    EXIT_FAILING,
    EXIT_OK,
    default_config,
    default_log_level,
    load_or_report,
    setup_logging,
)
from probe.cost import daily_cost, describe
from probe.features import Handler, Plugins
from probe.secrets import Redactor, import_credentials


def main(argv: Sequence[str] | None = None, plugins: Plugins = PLUGINS) -> int:
    parser = build_parser(plugins)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    imported = import_credentials(os.environ)  # systemd's LoadCredential=, as variables
    if imported:
        logging.getLogger("probe").info("secrets from systemd credentials: %s",
                                        ", ".join(imported))
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        code = int(args.handler(args, plugins))
        sys.stdout.flush()
    except BrokenPipeError:
        return closed_pipe()
    return code


EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a Unix tool's exit says when `head` stops reading


def closed_pipe() -> int:
    """The reader went away (``runpod-probe ledger list | head``): a quiet exit. What is
    still buffered goes to /dev/null, so the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """``--log-level``: a logging level name, any case; anything else is a usage error."""
    if text.upper() not in LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LEVELS)}, got {text!r}")
    return text.upper()


def build_parser(plugins: Plugins) -> argparse.ArgumentParser:
    # Global options are accepted before and after the sub-command (``run --log-level
    # DEBUG`` as well as ``--log-level DEBUG run``): the sub-parsers inherit them, and a
    # value given after the sub-command wins.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", type=log_level, default=argparse.SUPPRESS,
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: "
                             "$RUNPOD_PROBE_LOG_LEVEL or INFO)")
    parser = argparse.ArgumentParser(prog="runpod-probe", description="Health probing and "
                                     "observability for LLM endpoints on RunPod.",
                                     parents=[common])
    parser.add_argument("--version", action="version", version=f"runpod-probe {__version__}")
    parser.set_defaults(log_level=log_level(default_log_level()) if
                        default_log_level().upper() in LEVELS else "INFO")
    sub = parser.add_subparsers(dest="command", parser_class=_inheriting(common))

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", default=default_config(), help="config file (default: "
                       "$RUNPOD_PROBE_CONFIG or ./config.yaml)")
        p.set_defaults(handler=handler)
        return p

    command("run", cmd_run, "Run the daemon: probe on schedule, store, export metrics.")
    once = command("once", cmd_once, "Probe every endpoint once and print the results.")
    once.add_argument("--endpoint", help="only this endpoint")
    once.add_argument("--json", action="store_true", help="print JSON")
    once.add_argument("--store", action="store_true", help="also write results to the database")
    command("check-config", cmd_check_config, "Validate the config; exit 0 if it is valid.")
    for add in plugins.commands:
        add(sub, command)
    return parser


def _inheriting(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """A parser class whose every instance (each sub-command, and theirs) takes the global
    options too."""

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("parents", [])
            kwargs["parents"] = [*kwargs["parents"], common]
            super().__init__(*args, **kwargs)

    return Parser


def cmd_check_config(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.config}: ok ({len(config.endpoints)} endpoints)")
    print("\n".join(describe(daily_cost(plugins.plan(config), plugins))))
    if config.adds_endpoints_at_run_time:
        print("  (endpoints discovered at run time are not counted)")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    from probe.daemon import Daemon, StartupError
    from probe.process import run_event_loop

    async def _main() -> None:
        await Daemon(config, plugins).run(asyncio.Event())

    try:
        run_event_loop(_main())
    except StartupError as exc:
        print(f"runpod-probe: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def cmd_once(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    # a discovered endpoint is known only after discovery: the sweep finds it or nothing
    if (args.endpoint and not config.adds_endpoints_at_run_time
            and args.endpoint not in {e.name for e in config.endpoints}):
        print(f'runpod-probe: no endpoint named "{args.endpoint}"', file=sys.stderr)
        return EXIT_CONFIG
    from probe.daemon import StartupError, open_store
    from probe.report import VERDICT_COLUMNS, result_rows, table, to_json, verdict_rows, verdicts
    from probe.sweep import sweep
    from probe.verdict import State
    from probe.windows import overlay, windows_now

    try:  # opened for writing first, as the daemon does: nothing probed into a lost store
        store = open_store(config, Redactor(config.secret_env_names())) if args.store else None
    except StartupError as exc:
        print(f"runpod-probe: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        results = asyncio.run(sweep(config, plugins, args.endpoint, store))
    finally:
        if store is not None:
            store.close()
    if args.endpoint and not results:
        print(f'runpod-probe: no endpoint named "{args.endpoint}"', file=sys.stderr)
        return EXIT_CONFIG
    # the same judgement the daemon makes, on one sweep; maintenance as the daemon says it
    found = verdicts(results)
    judged = overlay(found, windows_now(plugins.windows, config, found))
    if args.json:
        print(to_json(results))
    else:
        print(table(result_rows(results)) + "\n\n" + table(verdict_rows(judged),
                                                            VERDICT_COLUMNS))
    # an endpoint in maintenance does not fail the sweep (its alerts are silenced too)
    up = bool(judged) and all(j.state in (State.UP, State.MAINTENANCE) for j in judged.values())
    return EXIT_OK if up else EXIT_FAILING
