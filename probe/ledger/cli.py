"""``runpod-probe ledger verify|list`` and ``runpod-probe learning --file PATH``.

Exit codes: 0 fine, 1 the ledger's chain is broken (the first bad entry is named),
2 bad usage: invalid config, no database, a LEARNING.md that is not ours to append to.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from probe.commands import default_config, load_or_report
from probe.durations import parse_duration
from probe.features import CommandFactory, Plugins
from probe.ledger.book import read_entries
from probe.ledger.chain import LedgerEntry, verify
from probe.ledger.learning import LearningFileError, append_learning
from probe.report import table

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def add_parser(sub: Any, command: CommandFactory) -> None:
    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=default_config(), help="config file (its "
                       "storage.path is the database)")
        p.add_argument("--db", help="read this database instead of the config's")

    ledger = sub.add_parser("ledger", help="Verify or list the append-only learning ledger.",
                            description="Verify or list the append-only learning ledger.")
    actions = ledger.add_subparsers(dest="ledger_command", required=True)
    check = actions.add_parser("verify", help="Recompute the hash chain; exit 1 naming the "
                               "first entry that does not match.")
    source(check)
    check.set_defaults(handler=cmd_verify)
    listing = actions.add_parser("list", help="Show ledger entries.")
    source(listing)
    listing.add_argument("--since", help='a date ("2026-02-18"), a UTC time, or an age '
                         '("24h", "7d")')
    listing.add_argument("--endpoint", help="only this endpoint")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)
    learning = command("learning", cmd_learning, "Append ledger entries not yet in a "
                       "LEARNING.md | Date | Pattern | Source | table.")
    learning.add_argument("--file", required=True, help="the LEARNING.md to append to")
    learning.add_argument("--db", help="read this database instead of the config's")


def database(args: argparse.Namespace, plugins: Plugins) -> Path:
    if args.db:
        path = Path(args.db)
    else:
        config = load_or_report(args.config, plugins.config, keys_needed=False)
        if config is None:
            raise UsageError("")
        path = config.storage.path
    if not path.is_file():
        raise UsageError(f"runpod-probe: no database at {path}")
    return path


def entries(path: Path, since: str | None = None,
            endpoint: str | None = None) -> list[LedgerEntry]:
    """The ledger's entries, or ``UsageError`` (one line) for a file that is not a SQLite
    database or has no ledger table."""
    try:
        conn = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error as exc:
        raise UsageError(f"runpod-probe: cannot open {path}: {exc}") from None
    try:
        if not has_ledger(conn):
            raise UsageError(f"runpod-probe: {path} has no ledger table (not a runpod-probe "
                             "database, or the table was dropped)")
        return read_entries(conn, since=since, endpoint=endpoint)
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"runpod-probe: {path} is not a readable SQLite database: "
                         f"{exc}") from None
    finally:
        conn.close()


def has_ledger(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'ledger'").fetchone() is not None


def _run(args: argparse.Namespace, plugins: Plugins, body: Any) -> int:
    try:
        return int(body(database(args, plugins)))
    except UsageError as exc:
        if str(exc):
            print(exc, file=sys.stderr)
        return EXIT_USAGE


def cmd_verify(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(path: Path) -> int:
        report = verify(entries(path))
        if not report.ok:
            print(f"runpod-probe: ledger verify FAILED: {report.problem} ({report.entries} "
                  "entries before it are intact)", file=sys.stderr)
            return EXIT_BROKEN
        print(f"ledger ok: {report.entries} entries, head sha256:{report.head}")
        return EXIT_OK

    return _run(args, plugins, body)


def parse_since(text: str, now: datetime | None = None) -> str:
    """A lower bound on entry times, as the ISO string entries are stored with."""
    now = now or datetime.now(UTC)
    try:
        return (now - timedelta(seconds=parse_duration(text))).isoformat(timespec="seconds")
    except ValueError:
        pass  # not an age: a date or a time
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f'runpod-probe: --since: expected a date ("2026-02-18"), a time or '
                         f'an age ("24h"), got "{text}"') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def cmd_list(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(path: Path) -> int:
        since = parse_since(args.since) if args.since else None
        found = entries(path, since, args.endpoint)
        if args.json:
            print(json.dumps([e.as_dict() for e in found], indent=2, ensure_ascii=False))
            return EXIT_OK
        rows = [[f"#{e.id}", e.ts, e.severity, e.endpoint, e.event, e.pattern] for e in found]
        print(table(rows, ("ID", "TIME", "SEVERITY", "ENDPOINT", "EVENT", "PATTERN"), width=200)
              if rows else "no ledger entries")
        return EXIT_OK

    return _run(args, plugins, body)


def cmd_learning(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(path: Path) -> int:
        all_entries = entries(path)
        report = verify(all_entries)
        if not report.ok:  # fail closed: never export what cannot be vouched for
            print(f"runpod-probe: not appending, ledger verify FAILED: {report.problem}",
                  file=sys.stderr)
            return EXIT_BROKEN
        try:
            added = append_learning(Path(args.file), all_entries)
        except LearningFileError as exc:
            print(f"runpod-probe: {args.file} {exc}; nothing was written", file=sys.stderr)
            return EXIT_USAGE
        print(f"{args.file}: appended {added} rows" if added else f"{args.file}: up to date")
        return EXIT_OK

    return _run(args, plugins, body)
