"""``runpod-probe maintenance start|end|list``: windows from the command line, stored in the
daemon's database; the running daemon applies them within ``probe.windows.TICK_S``.

Exit codes: 0 done; 2 bad input (an unknown endpoint, a duration over ``max_duration``, a
window that would overlap another, nothing to end, an invalid config), nothing written.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from probe.commands import (
    EXIT_CONFIG,
    EXIT_OK,
    daemon_answers,
    group_help,
    listener_url,
    load_or_report,
)
from probe.config.model import Config
from probe.durations import format_duration, parse_duration
from probe.features import CommandFactory, Plugins
from probe.maintenance import store
from probe.maintenance.settings import MaintenanceSettings
from probe.report import table
from probe.secrets import Redactor, plain_line
from probe.storage.verdicts import judged_endpoints
from probe.windows import TICK_S, Matcher

EXIT_USAGE = 2
LIST_DAYS = 7  # `list` shows what was on or will be on within this many days


class Refused(Exception):
    """Bad input: said in one line, exit 2, nothing written."""


def add_parser(sub: Any, command: CommandFactory) -> None:
    def source(p: argparse.ArgumentParser) -> None:
        pass  # --config (its storage.path is the database) is every command's global option

    top = sub.add_parser("maintenance", help="Start, end or list maintenance windows.",
                         description="Start, end or list maintenance windows: the endpoint's "
                         "state is maintenance, its checks go on, its alerts are silenced.")
    actions = top.add_subparsers(dest="maintenance_command")
    top.set_defaults(handler=group_help(top))
    begin = actions.add_parser("start", help="Put an endpoint in maintenance now.")
    source(begin)
    begin.add_argument("endpoint", metavar="NAME", help="the endpoint")
    begin.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                       help='how long, e.g. "2h" (at most the config\'s max_duration)')
    begin.add_argument("--reason", required=True, help="why (shown in the ledger and pages)")
    begin.set_defaults(handler=cmd_start)
    finish = actions.add_parser("end", help="End an endpoint's window from the command line.")
    source(finish)
    finish.add_argument("endpoint", metavar="NAME", help="the endpoint")
    finish.set_defaults(handler=cmd_end)
    listing = actions.add_parser("list", help="Windows on now, and those of the last and next "
                                 f"{LIST_DAYS} days.")
    source(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)


def who() -> str:
    """The person behind the command (through sudo too)."""
    name = os.environ.get("SUDO_USER") or os.environ.get("USER")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return name


def _run(args: argparse.Namespace, plugins: Plugins, body: Any) -> int:
    # a window is a row in the database: nothing is sent, no secret is needed
    config = load_or_report(args.config, plugins.config, keys_needed=False)
    if config is None:
        return EXIT_CONFIG
    try:
        return int(body(config))
    except Refused as exc:
        print(f"runpod-probe maintenance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:
        print(f"runpod-probe maintenance: {config.storage.path}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def known_endpoint(config: Config, name: str) -> None:
    """Configured, or judged by the daemon (a discovered endpoint)."""
    if name in {e.name for e in config.endpoints}:
        return
    if config.adds_endpoints_at_run_time and name in _judged(config.storage.path):
        return
    raise Refused(f'no endpoint named "{name}"')


def _judged(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'endpoint_state'"
                            ).fetchone():
            return set()
        return judged_endpoints(conn)
    finally:
        conn.close()


def cmd_start(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(config: Config) -> int:
        settings = MaintenanceSettings.of(config)
        known_endpoint(config, args.endpoint)
        try:
            seconds = parse_duration(args.duration)
        except ValueError as exc:
            raise Refused(f"--for: {exc}") from None
        if seconds <= 0 or seconds > settings.max_duration_s:
            raise Refused(f"--for {args.duration}: must be more than 0 and at most "
                          f"max_duration ({format_duration(settings.max_duration_s)})")
        reason = shown(config, args.reason)
        if not reason:
            raise Refused("--reason: say why (it is shown in the ledger)")
        now = datetime.now(UTC)
        end = now + timedelta(seconds=seconds)
        _refuse_overlap(config, args.endpoint, now, end)
        row = store.start(config.storage.path, args.endpoint, now, end, reason,
                          plain_line(who()))
        print(f"{args.endpoint}: in maintenance until {end.isoformat(timespec='seconds')} "
              f"({reason}); window {row.window().name}. {applied(config)}")
        return EXIT_OK

    return _run(args, plugins, body)


def applied(config: Config) -> str:
    """How the change stored in the database reaches the verdicts: the running daemon
    reads the table every few seconds; with none running, at its next start."""
    if daemon_answers(config):
        return f"The running daemon applies it within {TICK_S:.0f} s."
    return (f"No daemon answers at {listener_url(config)}: it is stored in "
            f"{config.storage.path} and applied when the daemon starts.")


def shown(config: Config, text: str) -> str:
    """``text`` (a reason, a name) as it may be stored and printed: one plain line (no
    terminal escape codes, no line breaks), every configured secret masked."""
    return Redactor(config.secret_env_names())(plain_line(text))


def _refuse_overlap(config: Config, name: str, begin: datetime, end: datetime) -> None:
    for row in store.recent(config.storage.path, begin):
        if row.endpoint == name and row.ended_at is None and row.starts_at < end:
            raise Refused(f"{name} is already in maintenance until "
                          f"{row.until.isoformat(timespec='seconds')} "
                          f"({shown(config, row.reason)}); end it "
                          f"first: runpod-probe maintenance end {name}")
    match = Matcher(e.name for e in config.endpoints)
    for window in MaintenanceSettings.of(config).windows:
        if not any(name in match(t) or t == name for t in window.targets):
            continue
        for start, stop in window.occurrences(begin, end):
            raise Refused(f'{name}: overlaps the config\'s window "{window.name}" '
                          f"({start.isoformat(timespec='minutes')} to "
                          f"{stop.isoformat(timespec='minutes')})")


def cmd_end(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(config: Config) -> int:
        known_endpoint(config, args.endpoint)
        now = datetime.now(UTC)
        ended = store.end(config.storage.path, args.endpoint, now, plain_line(who()))
        if ended:
            names = ", ".join(r.window().name for r in ended)
            print(f"{args.endpoint}: maintenance ended ({names}). {applied(config)}")
            return EXIT_OK
        match = Matcher(e.name for e in config.endpoints)
        for window in MaintenanceSettings.of(config).windows:
            on = window.active(now)
            if on is not None and any(args.endpoint in match(t) for t in window.targets):
                raise Refused(f'{args.endpoint} is in the config\'s window "{window.name}" '
                              f"until {on.end.isoformat(timespec='minutes') if on.end else '?'}:"
                              " change the config to end it")
        raise Refused(f"{args.endpoint} is not in a maintenance window started from the "
                      "command line")

    return _run(args, plugins, body)


def rows(config: Config, now: datetime) -> list[dict[str, Any]]:
    """Every window on within LIST_DAYS of now, config and command line, by start."""
    since, until = now - timedelta(days=LIST_DAYS), now + timedelta(days=LIST_DAYS)
    out: list[dict[str, Any]] = []
    for window in MaintenanceSettings.of(config).windows:
        for start, end in window.occurrences(since, until):
            out.append({"window": window.name, "endpoints": list(window.targets),
                        "origin": "config", "start": start.isoformat(timespec="seconds"),
                        "end": end.isoformat(timespec="seconds"),
                        "state": _state(start, end, now), "reason": shown(config, window.reason),
                        "schedule": window.describe()})
    for row in store.recent(config.storage.path, since):
        out.append({"window": row.window().name, "endpoints": [row.endpoint],
                    "origin": shown(config, row.window().origin),
                    "start": row.starts_at.isoformat(timespec="seconds"),
                    "end": row.until.isoformat(timespec="seconds"),
                    "state": _state(row.starts_at, row.until, now)
                    + (f" (ended by {shown(config, row.ended_by or '')})" if row.ended_at
                       else ""),
                    "reason": shown(config, row.reason), "schedule": "once"})
    return sorted(out, key=lambda r: (r["start"], r["window"]))


def _state(start: datetime, end: datetime, now: datetime) -> str:
    if end <= now:
        return "ended"
    return "on" if start <= now else "scheduled"


def cmd_list(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(config: Config) -> int:
        if not config.storage.path.is_file():  # not "no window": nothing could be read
            raise Refused(f"no database at {config.storage.path} (the daemon creates it when "
                          "it starts; is --config the service's?)")
        found = rows(config, datetime.now(UTC))
        if args.json:
            print(json.dumps(found, indent=2, ensure_ascii=False))
            return EXIT_OK
        if not found:
            print(f"no maintenance window within {LIST_DAYS} days")
            return EXIT_OK
        print(table([[r["window"], ",".join(r["endpoints"]), r["origin"], r["start"], r["end"],
                      r["state"], r["reason"]] for r in found],
                    ("WINDOW", "ENDPOINTS", "ORIGIN", "START", "END", "STATE", "REASON"),
                    width=220))
        return EXIT_OK

    return _run(args, plugins, body)
