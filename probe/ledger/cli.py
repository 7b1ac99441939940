"""``runpod-probe ledger verify|list`` and ``runpod-probe learning --file PATH``.

Exit codes: 0 fine, 1 the ledger's chain is broken (the first bad entry is named),
2 bad usage: invalid config, no database, a LEARNING.md that is not ours to append to.

``ledger verify`` holds the table's head against what is kept outside it: the anchor file
beside the database (``probe.ledger.anchor``), the entries LEARNING.md cites and, with
``--metrics URL``, the head the running daemon's writer reports on its /metrics page
(``runpod_probe_ledger_head_id``, and its chain watch's ``runpod_probe_ledger_chain_valid``),
so entries removed from the end, all of them or the table itself fail it too, even with the
anchor file removed as well. A page that cannot be read is exit 2.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from probe.commands import group_help, load_or_report
from probe.durations import parse_duration
from probe.features import CommandFactory, Plugins
from probe.ledger.anchor import (
    AnchorError,
    anchor_path,
    anchor_problem,
    has_table,
    read_anchor,
)
from probe.ledger.book import read_entries
from probe.ledger.chain import LedgerEntry, verify
from probe.ledger.digest import digest, markdown, window_of
from probe.ledger.learning import LearningFileError, append_learning, cited
from probe.ledger.lessons import Hold
from probe.ledger.settings import LearningSettings
from probe.report import table

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2
SCRAPE_TIMEOUT_S = 2.0
HEAD_ID, CHAIN_VALID = "runpod_probe_ledger_head_id", "runpod_probe_ledger_chain_valid"


class UsageError(Exception):
    pass


def add_parser(sub: Any, command: CommandFactory) -> None:
    def source(p: argparse.ArgumentParser) -> None:
        # --config (its storage.path is the database) is every command's global option
        p.add_argument("--db", help="read this database instead of the config's")

    ledger = sub.add_parser("ledger", help="Verify or list the append-only learning ledger.",
                            description="Verify or list the append-only learning ledger.")
    actions = ledger.add_subparsers(dest="ledger_command")
    ledger.set_defaults(handler=group_help(ledger))
    check = actions.add_parser("verify", help="Recompute the hash chain; exit 1 naming the "
                               "first entry that does not match.")
    source(check)
    check.add_argument("--learning", help="the LEARNING.md whose citations the ledger must "
                       "reach (default: the config's, or LEARNING.md beside --db)")
    check.add_argument("--metrics", metavar="URL", help="the /metrics page of the daemon "
                       "writing this database (e.g. http://127.0.0.1:9464/metrics): the "
                       "ledger must reach the head it reports, and its chain watch must "
                       "read valid")
    check.set_defaults(handler=cmd_verify)
    listing = actions.add_parser("list", help="Show ledger entries.")
    source(listing)
    listing.add_argument("--since", help='a date ("2026-02-18"), a UTC time, or an age '
                         '("24h", "7d")')
    listing.add_argument("--endpoint", help="only this endpoint")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)
    learning = command("learning", cmd_learning, "Append the ledger's lessons not yet in a "
                       "LEARNING.md | Date | Pattern | Source | table, or print a digest.")
    what = learning.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", help="the LEARNING.md to append to")
    what.add_argument("--digest", metavar="AGE", help='print what the last AGE ("7d", "24h") '
                      "taught: availability by day, incidents, MTTR, patterns, what the "
                      "probes spent (Markdown)")
    learning.add_argument("--json", action="store_true", help="the digest as JSON")
    learning.add_argument("--until", help="the digest's window ends here (a date or UTC "
                          "time; default: now)")
    learning.add_argument("--db", help="read this database instead of the config's")


def database(args: argparse.Namespace, plugins: Plugins) -> tuple[Path, Path | None]:
    """The database, and the LEARNING.md that cites its entries (None: learning is off)."""
    learning: Path | None
    if args.db:
        path = Path(args.db)
        learning = path.with_name("LEARNING.md")
    else:
        config = load_or_report(args.config, plugins.config, keys_needed=False)
        if config is None:
            raise UsageError("")
        path = config.storage.path
        settings = LearningSettings.of(config)
        learning = settings.path if settings is not None else None
    if getattr(args, "learning", None):
        learning = Path(args.learning)
    if not path.is_file():
        raise UsageError(f"runpod-probe: no database at {path}")
    return path, learning


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to ``path``; a file that is not a SQLite database is ``UsageError``."""
    try:
        conn = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error as exc:
        raise UsageError(f"runpod-probe: cannot open {path}: {exc}") from None
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"runpod-probe: {path} is not a readable SQLite database: "
                         f"{exc}") from None
    finally:
        conn.close()


def no_table(path: Path) -> UsageError:
    return UsageError(f"runpod-probe: {path} has no ledger table (not a runpod-probe database, "
                      "or the table was dropped)")


def entries(path: Path, since: str | None = None,
            endpoint: str | None = None) -> list[LedgerEntry]:
    """The ledger's entries, or ``UsageError`` (one line) for a file that is not a SQLite
    database or has no ledger table."""
    with opened(path) as conn:
        if not has_table(conn):
            raise no_table(path)
        return read_entries(conn, since=since, endpoint=endpoint)


def _run(args: argparse.Namespace, plugins: Plugins, body: Any) -> int:
    try:
        return int(body(*database(args, plugins)))
    except UsageError as exc:
        if str(exc):
            print(exc, file=sys.stderr)
        return EXIT_USAGE


class Broken(Exception):
    """The ledger fails verification (one line: what is wrong)."""


@dataclass(frozen=True, slots=True)
class Reported:
    """What a running daemon's /metrics page says of its ledger."""

    url: str
    head_id: int
    chain_valid: bool


def scrape(url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> Reported:
    """The ledger's head and chain state on the daemon's /metrics page at ``url``, or
    ``UsageError`` (one line) when the page cannot be read or lacks them."""
    def unusable(why: str) -> UsageError:
        return UsageError(f"runpod-probe: cannot read the daemon's metrics at {url}: "
                          + " ".join(why.split()))

    try:
        answer = httpx.get(url, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise unusable(str(exc) or type(exc).__name__) from None
    if answer.status_code != 200:
        raise unusable(f"HTTP {answer.status_code}")
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(answer.text):
            if family.name in (HEAD_ID, CHAIN_VALID) and family.samples:
                values[family.name] = family.samples[0].value
    except ValueError as exc:
        raise unusable(f"not a Prometheus text exposition ({exc})") from None
    missing = [name for name in (HEAD_ID, CHAIN_VALID) if name not in values]
    if missing:
        raise unusable(f"no {' or '.join(missing)} (not a runpod-probe daemon keeping a "
                       "ledger, or one older than this command)")
    return Reported(url, int(values[HEAD_ID]), values[CHAIN_VALID] == 1)


def cmd_verify(args: argparse.Namespace, plugins: Plugins) -> int:
    def body(path: Path, learning: Path | None) -> int:
        # the page first: the writer reports a head once it is committed, so a table read
        # after the page reaches it unless entries were removed
        reported = scrape(args.metrics) if args.metrics else None
        try:
            print(f"ledger ok: {check(path, learning, reported)}")
        except Broken as exc:
            print(f"runpod-probe: ledger verify FAILED: {exc}", file=sys.stderr)
            return EXIT_BROKEN
        return EXIT_OK

    return _run(args, plugins, body)


def check(path: Path, learning: Path | None, reported: Reported | None = None) -> str:
    """What was verified (one line), or ``Broken``: the chain, the head the running daemon
    ``reported``, the anchor beside the database and the citations of ``learning``."""
    name = anchor_path(path).name
    try:
        anchor = read_anchor(path)
    except AnchorError as exc:
        raise Broken(str(exc)) from None
    cites = cited_by(learning)
    with opened(path) as conn:
        if not (has_table(conn) or anchor or cites or (reported and reported.head_id)):
            raise no_table(path)
        problem = anchor_problem(conn, anchor, name) if anchor is not None else None
        found = read_entries(conn) if has_table(conn) else []
    report = verify(found)
    if not report.ok:
        raise Broken(f"{report.problem} ({report.entries} entries before it are intact)")
    # an anchor removed with the entries: say so, the evidence left is what cites them
    unanchored = "" if anchor is not None else f", and there is no {name} either"
    if reported is not None and reported.head_id > len(found):
        raise Broken(f"ledger entry #{len(found) + 1}: missing: the daemon at {reported.url} "
                     f"reports head #{reported.head_id} ({HEAD_ID}), the ledger ends at "
                     f"#{len(found)}: entries removed from the end{unanchored}")
    if problem is not None:
        raise Broken(str(problem))
    said = [f"{report.entries} entries, head sha256:{report.head}"]
    said.append(f"anchored in {name}" if anchor is not None else
                f"unanchored: no {name} yet (the daemon writes it when it starts), so "
                "entries removed from the end cannot be told")
    if cites:
        last = max(cites)
        if last > len(found):
            raise Broken(f"ledger entry #{len(found) + 1}: missing: {learning} cites ledger "
                         f"#{last} sha256:{cites[last]}, the ledger ends at #{len(found)}: "
                         f"entries removed from the end{unanchored}")
        for entry_id, short in sorted(cites.items()):
            have = found[entry_id - 1].short_hash  # ids are 1..n: the chain verified
            if have != short:
                raise Broken(f"ledger entry #{entry_id}: {learning} cites sha256:{short}, "
                             f"the ledger has sha256:{have}: entries replaced, or the file "
                             "was written from another ledger")
        said.append(f"{learning} cites through #{last}")
    if reported is not None:
        if not reported.chain_valid:
            raise Broken(f"the daemon at {reported.url} reports {CHAIN_VALID} 0: its chain "
                         "watch found the ledger broken (its log and /status say how)")
        said.append(f"the daemon at {reported.url} reports head #{reported.head_id}, "
                    "chain valid")
    return "; ".join(said)


def cited_by(learning: Path | None) -> dict[int, str]:
    """The entries ``learning`` cites (none when it is absent or unreadable: it is checked
    where it is written)."""
    if learning is None:
        return {}
    try:
        return cited(learning.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


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
    def body(path: Path, _learning: Path | None) -> int:
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


def fleet_probes(args: argparse.Namespace, plugins: Plugins) -> int:
    """How many probes the config's fleet has (itself and its peers; 1 with ``--db``): with
    more than one, LEARNING.md rows and the digest name the probe."""
    if args.db:
        return 1
    config = load_or_report(args.config, plugins.config, keys_needed=False)
    return config.probes if config is not None else 1


def cmd_learning(args: argparse.Namespace, plugins: Plugins) -> int:
    if args.digest:
        return _run(args, plugins, lambda path, _learning: print_digest(
            args, path, fleet_probes(args, plugins)))

    def body(path: Path, _learning: Path | None) -> int:
        if not Path(args.file).absolute().parent.is_dir():  # a typo must not create a tree
            print(f"runpod-probe: {args.file}: no directory {Path(args.file).parent}; nothing "
                  "was written", file=sys.stderr)
            return EXIT_USAGE
        all_entries = entries(path)
        report = verify(all_entries)
        if not report.ok:  # fail closed: never export what cannot be vouched for
            print(f"runpod-probe: not appending, ledger verify FAILED: {report.problem}",
                  file=sys.stderr)
            return EXIT_BROKEN
        try:
            added = append_learning(Path(args.file), all_entries,
                                    hold=Hold(datetime.now(UTC)),
                                    probes=fleet_probes(args, plugins))
        except LearningFileError as exc:
            print(f"runpod-probe: {args.file} {exc}; nothing was written", file=sys.stderr)
            return EXIT_USAGE
        print(f"{args.file}: appended {added} rows" if added else f"{args.file}: up to date")
        return EXIT_OK

    return _run(args, plugins, body)


def print_digest(args: argparse.Namespace, path: Path, probes: int = 1) -> int:
    try:
        seconds = parse_duration(args.digest)
    except ValueError as exc:
        raise UsageError(f"runpod-probe: --digest: {exc}") from None
    end = datetime.fromisoformat(parse_since(args.until)) if args.until else datetime.now(UTC)
    with opened(path) as conn:
        if not has_table(conn):
            raise no_table(path)
        found = digest(conn, window_of(seconds, end), probes)
    print(json.dumps(found, indent=2, ensure_ascii=False) if args.json else markdown(found))
    return EXIT_OK
