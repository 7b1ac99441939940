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

from probe.app import PLUGINS
from probe.build import build_name
from probe.commands import (
    EXIT_CONFIG,
    EXIT_FAILING,
    EXIT_OK,
    LOG_LEVEL_ENV,
    SERVICE_DIR,
    default_config,
    default_log_level,
    load_or_report,
    load_without_keys,
    service_credentials,
    setup_logging,
    unknown_endpoint,
)
from probe.cost import daily_cost, describe
from probe.features import Handler, Plugins
from probe.logs import FORMAT_ENV, FORMATS, LEVELS
from probe.secrets import Redactor, import_credentials


def main(argv: Sequence[str] | None = None, plugins: Plugins = PLUGINS) -> int:
    for name, value, known in ((LOG_LEVEL_ENV, default_log_level(), LEVELS),
                               (FORMAT_ENV, default_log_format(), FORMATS)):
        if value.upper() not in {k.upper() for k in known}:  # a typo is not silently INFO
            print(f"runpod-probe: ${name}: expected one of {', '.join(known)}, got {value!r}",
                  file=sys.stderr)
            return EXIT_CONFIG
    parser = build_parser(plugins)
    args = parser.parse_args(argv)
    args.log_level = getattr(args, "log_level", default_log_level().upper())
    args.log_format = getattr(args, "log_format", default_log_format().lower())
    setup_logging(args.log_level, args.log_format)
    log = logging.getLogger("probe")
    # the service's secrets without exporting anything: systemd's credentials (the
    # service), else the install recipe's credentials directory when readable (root)
    imported = import_credentials(os.environ, service_credentials())
    if imported:
        log.debug("secrets from credentials: %s", ", ".join(imported))
    if getattr(args, "config", None) is None:
        args.config = default_config() if args.reads_service_config else None
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


def default_log_format() -> str:
    return os.environ.get(FORMAT_ENV) or "text"


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
    common.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS,
                        help="text (priorities for the journal under systemd) or json, one "
                             "object a line (default: $RUNPOD_PROBE_LOG_FORMAT or text)")
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (default: $RUNPOD_PROBE_CONFIG, else "
                             f"{SERVICE_DIR}/config.yaml when it exists, else ./config.yaml)")
    parser = argparse.ArgumentParser(prog="runpod-probe", description="Health probing and "
                                     "observability for LLM endpoints on RunPod.",
                                     parents=[common])
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print the version (and the git commit it was installed or runs from)")
    # no set_defaults for the global options: their action is shared with every
    # sub-parser, which would then overwrite a value given before the sub-command
    parser.set_defaults(reads_service_config=True)
    sub = parser.add_subparsers(dest="command", parser_class=_inheriting(common))

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command("run", cmd_run, "Run the daemon: probe on schedule, store, export metrics.")
    once = command("once", cmd_once, "Probe every endpoint once and print the results.")
    once.add_argument("--endpoint", help="only this endpoint")
    once.add_argument("--json", action="store_true", help="print JSON")
    once.add_argument("--store", action="store_true", help="also write results to the database")
    once.add_argument("--checks", action="store_true", help="print only every check's result "
                      "(the table printed after the verdict summary)")
    command("check-config", cmd_check_config, "Validate the config; exit 0 if it is valid.")
    for add in plugins.commands:
        add(sub, command)
    return parser


class _Version(argparse.Action):
    """``--version``: the build's name, looked up only when asked (git is not run for
    every command)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"runpod-probe {build_name()}")
        parser.exit()


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
    # checking a file sends nothing: the keys it names may be unset here (the service is
    # given them), which is said, not refused; a key that is set is checked as the daemon
    # checks it (never sent to a pod)
    loaded = load_without_keys(args.config, plugins.config)
    if loaded is None:
        return EXIT_CONFIG
    config, missing = loaded
    for problem in missing:
        print(f"runpod-probe: warning: {problem} here (the service must be given it: "
              "README, Install on a VM)", file=sys.stderr)
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


class Counted:
    """The sweep's recorder: counts each result for the progress line, and hands it to the
    store when ``--store`` gave one."""

    def __init__(self, progress: Any, store: Any) -> None:
        self.progress, self.store = progress, store

    def record(self, result: Any) -> int | None:
        self.progress.tick()
        return None if self.store is None else int(self.store.record(result))


def cmd_once(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    # a discovered endpoint is known only after discovery: the sweep finds it or nothing
    if (args.endpoint and not config.adds_endpoints_at_run_time
            and args.endpoint not in {e.name for e in config.endpoints}):
        known = [e.name for e in config.endpoints]
        print(f"runpod-probe: {unknown_endpoint(args.endpoint, known)}", file=sys.stderr)
        return EXIT_CONFIG
    from probe.daemon import StartupError, open_store
    from probe.report import judged_summary, result_rows, table, to_json, verdicts
    from probe.sweep import sweep
    from probe.terminal import Progress, colour, width
    from probe.verdict import State
    from probe.windows import overlay, windows_now

    try:  # opened for writing first, as the daemon does: nothing probed into a lost store
        store = open_store(config, Redactor(config.secret_env_names())) if args.store else None
    except StartupError as exc:
        print(f"runpod-probe: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        with Progress("probing") as progress:  # on a terminal's stderr only
            results = asyncio.run(sweep(config, plugins, args.endpoint,
                                        Counted(progress, store)))
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
    elif args.checks:
        print(table(result_rows(results), width=width()))
    else:  # the verdicts at a glance, worst first; then what each check said
        print(judged_summary(judged, colour(), width()) + "\n\n"
              + table(result_rows(results), width=width()))
    # an endpoint in maintenance does not fail the sweep (its alerts are silenced too)
    up = bool(judged) and all(j.state in (State.UP, State.MAINTENANCE) for j in judged.values())
    return EXIT_OK if up else EXIT_FAILING
