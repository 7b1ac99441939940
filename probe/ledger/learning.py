"""Append lessons (``probe.ledger.lessons``) to a LEARNING.md ``| Date | Pattern | Source |``
table: incidents, changes and fleet rows to the ledger table, patterns and capability
changes to the Meta-Patterns table.

The file's existing lines are never changed, reordered or removed: rows are inserted under
the last row of their table (ours, or the scope's when it ends the file), a table of our own
is added at the end when there is none; the new file is written to a temporary file beside
it, fsynced and renamed over it, so a crash leaves either the old file or the whole new one.
Where the last run left off is read from the file itself: every row we write ends with the
citation ``ledger #N sha256:<12 hex> |``, and only lessons citing entries after the highest
cited id are added (a restored or hand-edited file gets no duplicates; a row someone deleted
by hand is not forced back). A citation counts only there, at the end of a table row: text
from servers, names and reasons (a model id, an endpoint name, a maintenance reason) is data,
written inside a cell with its pipes escaped and its line breaks made spaces, so it can never
end a row and never reads as a citation, whatever it says. A file with no such table, one
that cites entries this ledger does not have, or one we may not write, is an error: it is
never rewritten.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from probe.atomic import Changed, write_atomic
from probe.jinja import environment
from probe.ledger.chain import LedgerEntry
from probe.ledger.lessons import (
    LEDGER_TABLE,
    PATTERNS_TABLE,
    Hold,
    Lesson,
    fleet_names,
    lessons,
)

HEADER = re.compile(r"^\s*\|\s*Date\s*\|\s*Pattern\s*\|\s*Source\s*\|\s*$", re.IGNORECASE)
SEPARATOR = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|){2}\s*:?-{3,}:?\s*\|?\s*$")
# A row's citation: the last thing on a table row line (data never ends a row, see _cell).
MARKER = re.compile(r"^\s*\|.*(?<![^\s·])ledger #(\d+) sha256:([0-9a-f]{12})\s*\|\s*$",
                    re.MULTILINE)
# Everything str.splitlines() breaks a line at: none of it may reach a cell.
LINE_BREAKS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
ATTEMPTS = 3
META_HEADING = re.compile(r"meta-patterns", re.IGNORECASE)
TITLES = {LEDGER_TABLE: "Runtime lessons (runpod-probe ledger)",
          PATTERNS_TABLE: "Meta-Patterns (runpod-probe ledger)"}


class LearningFileError(Exception):
    """The file is not ours to append to; nothing was written."""


def _cell(text: str) -> str:
    """Data in a cell: one line, every pipe escaped, so it can never end the row."""
    return LINE_BREAKS.sub(" ", str(text)).replace("|", "\\|")


def _source(lesson: Lesson, name_probes: bool = False) -> str:
    """What backs the row, ending with its citation; ``name_probes``: the citation names the
    probe whose ledger it is (a fleet of more than one probe)."""
    entry = lesson.cite
    e = entry.evidence
    cite = f"ledger #{entry.id} sha256:{entry.short_hash}"
    if name_probes and entry.instance:
        cite = f"{entry.instance} {cite}"
    if lesson.event in ("incident_opened", "incident_closed") and lesson.names:  # a fleet
        # incident's row as it opens or closes
        first, last = lesson.covers
        return (f"Runtime probe @ {e.url} (incident: {e.outcome}; ledger #{first}–#{last}: "
                f"{fleet_names(lesson.names)}) · {cite}")
    if lesson.names:  # a fleet change: every endpoint it names, and the entries behind it
        first, last = lesson.covers
        span = f"ledger #{first}–#{last}" if last != first else f"ledger #{first}"
        origin = "RunPod API discovery" if e.check == "discovery" else "runpod-probe config"
        return f"{origin} ({span}: {fleet_names(lesson.names)}) · {cite}"
    if e.check == "maintenance":  # a window began or ended
        return f"runpod-probe maintenance{f' @ {e.url}' if e.url else ''} · {cite}"
    if e.outcome is None:  # a config fact, not an observation
        return f"runpod-probe config{f' @ {e.url}' if e.url else ''} · {cite}"
    rows = ""
    if e.first_row is not None and e.last_row is not None and e.first_row != e.last_row:
        rows = f"; results #{e.first_row}–#{e.last_row}"
    elif e.last_row is not None:
        rows = f"; result #{e.last_row}"
    return f"Runtime probe @ {e.url} ({e.check}: {e.outcome}{rows}) · {cite}"


@functools.cache
def _template() -> jinja2.Template:
    return environment(cell=_cell, source=_source).get_template("learning_rows.md.j2")


def cited(text: str) -> dict[int, str]:
    """Ledger entries the file's rows cite (at the end of a row, nowhere else): id -> hash
    prefix."""
    return {int(m.group(1)): m.group(2) for m in MARKER.finditer(text)}


@dataclass(frozen=True, slots=True)
class Table:
    header: int  # line index of its header
    end: int  # line index of its last row
    meta: bool  # a Meta-Patterns table (its heading says so)
    ours: bool  # holds a row we wrote


def tables(lines: Sequence[str]) -> list[Table]:
    """Every Date | Pattern | Source table, in file order."""
    found = []
    for i in range(len(lines) - 1):
        if HEADER.match(lines[i]) and SEPARATOR.match(lines[i + 1]):
            end = i + 1
            while end + 1 < len(lines) and lines[end + 1].lstrip().startswith("|"):
                end += 1
            above = next((line for line in reversed(lines[:i]) if line.strip()), "")
            ours = any(MARKER.match(line) for line in lines[i + 2:end + 1])
            found.append(Table(i, end, bool(META_HEADING.search(above)), ours))
    return found


def _check_citations(text: str, entries: Sequence[LedgerEntry]) -> int:
    """The highest entry the file cites, after checking each citation is this ledger's."""
    ours = {e.id: e.short_hash for e in entries}
    found = cited(text)
    for entry_id, short in sorted(found.items()):
        if ours.get(entry_id) != short:
            have = f"sha256:{ours[entry_id]}" if entry_id in ours else "no such entry"
            raise LearningFileError(f"cites ledger #{entry_id} sha256:{short} but this ledger "
                                    f"has {have}: it was written from another ledger")
    return max(found, default=0)


def _placement(found: list[Table], lines: Sequence[str], table: str) -> tuple[int, bool]:
    """(line index after which the rows go, whether they start a table of their own) for
    rows of ``table``: under the last table of that kind we wrote; else under the scope's
    own table of that kind when nothing but tables we added follow it (its ledger: the first
    table); else a new table at the end."""
    meta = table == PATTERNS_TABLE
    kind = [t for t in found if t.meta == meta]
    mine = [t for t in kind if t.ours]
    if mine:
        return mine[-1].end, False
    scope = ([t for t in kind if t.header == found[0].header] if not meta else kind[-1:])
    if scope and _only_ours(lines[scope[0].end + 1:]):
        return scope[0].end, False
    return len(lines) - 1, True


def _only_ours(lines: Sequence[str]) -> bool:
    """Nothing but tables we added (their headings, blank lines, our rows) in ``lines``."""
    ours = {f"## {title}" for title in TITLES.values()}
    return all(not line.strip() or line.strip() in ours or HEADER.match(line)
               or SEPARATOR.match(line) or MARKER.match(line) for line in lines)


def names_probes(entries: Sequence[LedgerEntry], probes: int = 1) -> bool:
    """Whether rows name the probe whose ledger they cite: only in a fleet of more than one
    probe (``probes``: how many the config knows of), or when the entries are more than one
    probe's; a lone probe's rows read as they always did."""
    return probes > 1 or len({e.instance for e in entries if e.instance}) > 1


def updated(text: str, entries: Sequence[LedgerEntry],
            keep: Callable[[Lesson], bool] | None = None,
            hold: Hold | None = None, probes: int = 1) -> tuple[str, int]:
    """``text`` with a row for every lesson of ``entries`` it does not cite yet, and how
    many rows that is. Existing lines are kept as they are, in order: rows are inserted
    under the last row of their table, new tables added at the end. ``hold``: rows a fleet
    incident may still claim wait; ``probes``: how many probes the fleet has
    (``names_probes``)."""
    lines = text.splitlines(keepends=True)
    bare = [line.rstrip("\r\n") for line in lines]
    found = tables(bare)
    if not found:
        raise LearningFileError("has no | Date | Pattern | Source | table to append to")
    done = _check_citations(text, entries)
    new = [lesson for lesson in lessons(entries, hold)
           if lesson.cite.id > done and (keep is None or keep(lesson))]
    if not new:
        return text, 0
    nl = "\r\n" if "\r\n" in text else "\n"
    named = names_probes(entries, probes)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    # one table's rows at a time; an insertion point is a line index kept in the original
    # numbering, so every later insertion is applied first; at one point, rows under an
    # existing table come before a new table, a new ledger table before a new patterns one
    adds: list[tuple[int, bool, int, str]] = []
    for order, table in enumerate((LEDGER_TABLE, PATTERNS_TABLE)):
        rows = [lesson for lesson in new if lesson.table == table]
        if not rows:
            continue
        after, own = _placement(found, bare, table)
        rendered = _template().render(lessons=rows, new_table=own, nl=nl,
                                      title=TITLES[table], name_probes=named)
        adds.append((after, own, order, rendered))
    for after, _, _, rendered in sorted(adds, reverse=True):
        lines.insert(after + 1, rendered)
    return "".join(lines), len(new)


# A new LEARNING.md starts like the RunPod scope's own: a ledger table to append rows to.
NEW_FILE = """# LEARNING

Runtime lessons runpod-probe learned about the fleet, appended from its hash-chained ledger
(each row cites its entry: `runpod-probe ledger verify` checks the chain). Rows are only
ever appended; edit the prose around them freely.

## Ledger

| Date | Pattern | Source |
|---|---|---|
"""


def append_learning(path: Path, entries: Sequence[LedgerEntry],
                    keep: Callable[[Lesson], bool] | None = None,
                    hold: Hold | None = None, probes: int = 1) -> int:
    """Add the lessons of ``entries`` (those ``keep`` keeps) that ``path`` does not cite yet;
    return how many rows were added. A missing file is created first, with a ledger table
    (and its directory). ``hold``: rows a fleet incident may still claim wait (None: none
    wait); ``probes``: how many probes the fleet has (``names_probes``)."""
    target = Path(os.path.realpath(path))  # replace the file a symlink points at, not the link
    if not target.exists():
        create(target)
    for _ in range(ATTEMPTS):
        before, _, text = _read(target)
        new_text, added = updated(text, entries, keep, hold, probes)
        if not added:
            return 0
        _check_writable(target)
        if _replace(target, new_text.encode("utf-8"), before):
            return added
    raise LearningFileError("keeps changing while being appended to; try again")


def create(target: Path) -> None:
    """A new LEARNING.md with its table, written atomically (never over an existing file)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a directory should be, no permission
        raise LearningFileError(f"cannot be created: {exc.strerror or exc}") from None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # created meanwhile: append to it
    except OSError as exc:
        raise LearningFileError(f"cannot be created: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(NEW_FILE)
        out.flush()
        os.fsync(out.fileno())


def check_appendable(path: Path) -> None:
    """Raise ``LearningFileError`` unless ``path`` is a regular writable file with a table,
    or does not exist yet and can be created. Either way a file must be creatable in its
    directory (appends write a temporary file there and rename it): one is created and
    removed to find out, so a path under /proc, /sys or a read-only mount is refused at
    start instead of failing at every append."""
    target = Path(os.path.realpath(path))
    if not target.exists():
        parent = target.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise LearningFileError(f"does not exist and cannot be created ({parent} is not "
                                    "a directory)")
        _check_creatable_in(parent, "does not exist and cannot be created")
        return
    if not target.is_file():
        kind = "a directory" if target.is_dir() else "not a regular file"
        raise LearningFileError(f"is {kind}: a LEARNING.md must be a regular file")
    _, _, text = _read(target)
    if not tables(text.splitlines()):
        raise LearningFileError("has no | Date | Pattern | Source | table to append to")
    _check_writable(target)
    _check_creatable_in(target.parent, "is not writable")


def _check_creatable_in(directory: Path, what: str) -> None:
    """A regular file can be created (and removed) in ``directory``."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".LEARNING.", suffix=".check", dir=directory)
    except OSError as exc:
        raise LearningFileError(f"{what} (no file can be created in {directory}: "
                                f"{exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _read(target: Path) -> tuple[os.stat_result, bytes, str]:
    try:
        before = target.stat()
        data = target.read_bytes()
    except FileNotFoundError:
        raise LearningFileError("does not exist") from None
    except OSError as exc:
        raise LearningFileError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        return before, data, data.decode("utf-8")
    except UnicodeDecodeError:
        raise LearningFileError("is not UTF-8 text") from None


def _check_writable(target: Path) -> None:
    # A file with no write bit was made read-only on purpose: respect that even as root.
    read_only = not target.stat().st_mode & 0o222
    if read_only or not os.access(target, os.W_OK) or not os.access(target.parent, os.W_OK):
        raise LearningFileError("is not writable (the file and its directory must be)")


def _replace(target: Path, content: bytes, before: os.stat_result) -> bool:
    """Write ``content`` atomically over ``target`` unless it changed since ``before``."""
    try:
        write_atomic(target, content, before.st_mode & 0o7777, unchanged_since=before)
    except Changed:
        return False  # someone edited it meanwhile: start over from their bytes
    return True
