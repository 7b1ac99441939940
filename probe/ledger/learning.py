"""Append ledger entries to a LEARNING.md ``| Date | Pattern | Source |`` table.

The file's existing bytes are never changed, reordered or removed: the new file is the
old bytes plus a chunk, written to a temporary file beside it, fsynced and renamed over
it, so a crash leaves either the old file or the whole new one. Where the last run left
off is read from the file itself: every row we write ends with the citation
``ledger #N sha256:<12 hex> |``, and only entries after the highest cited id are appended (a
restored or hand-edited file gets no duplicates; a row someone deleted by hand is not forced
back). A citation counts only there, at the end of a table row: text from servers, names
and reasons (a model id, an endpoint name, a maintenance reason) is data, written inside a
cell with its pipes escaped and its line breaks made spaces, so it can never end a row and
never reads as a citation, whatever it says. A file with no
such table, one that cites entries this ledger does not have, or one we may not write,
is an error: it is never rewritten.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jinja2

from probe.atomic import Changed, write_atomic
from probe.jinja import environment
from probe.ledger.chain import LedgerEntry

HEADER = re.compile(r"^\s*\|\s*Date\s*\|\s*Pattern\s*\|\s*Source\s*\|\s*$", re.IGNORECASE)
SEPARATOR = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|){2}\s*:?-{3,}:?\s*\|?\s*$")
# A row's citation: the last thing on a table row line (data never ends a row, see _cell).
MARKER = re.compile(r"^\s*\|.*(?<![^\s·])ledger #(\d+) sha256:([0-9a-f]{12})\s*\|\s*$",
                    re.MULTILINE)
# Everything str.splitlines() breaks a line at: none of it may reach a cell.
LINE_BREAKS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
ATTEMPTS = 3


class LearningFileError(Exception):
    """The file is not ours to append to; nothing was written."""


def _cell(text: str) -> str:
    """Data in a cell: one line, every pipe escaped, so it can never end the row."""
    return LINE_BREAKS.sub(" ", str(text)).replace("|", "\\|")


def _source(entry: LedgerEntry) -> str:
    e = entry.evidence
    cite = f"ledger #{entry.id} sha256:{entry.short_hash}"
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


def tables(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(header line, last row line) of every Date | Pattern | Source table."""
    found = []
    for i in range(len(lines) - 1):
        if HEADER.match(lines[i]) and SEPARATOR.match(lines[i + 1]):
            end = i + 1
            while end + 1 < len(lines) and lines[end + 1].lstrip().startswith("|"):
                end += 1
            found.append((i, end))
    return found


def chunk(text: str, entries: Sequence[LedgerEntry]) -> str:
    """The bytes to add after ``text`` so it holds every entry it does not cite yet."""
    lines = text.splitlines()
    found = tables(lines)
    if not found:
        raise LearningFileError("has no | Date | Pattern | Source | table to append to")
    ours = {e.id: e.short_hash for e in entries}
    for entry_id, short in sorted(cited(text).items()):
        if ours.get(entry_id) != short:
            have = f"sha256:{ours[entry_id]}" if entry_id in ours else "no such entry"
            raise LearningFileError(f"cites ledger #{entry_id} sha256:{short} but this ledger "
                                    f"has {have}: it was written from another ledger")
    done = max(cited(text), default=0)
    new = [e for e in entries if e.id > done]
    if not new:
        return ""
    nl = "\r\n" if "\r\n" in text else "\n"
    start, end = found[-1]
    table_text = "\n".join(lines[start:end + 1])
    # Rows go straight under the last table only if it ends the file and is the
    # scope's ledger (the first table) or one we started; else we start our own table.
    at_end = end == len(lines) - 1 and not text.endswith(nl * 2)
    extend = at_end and (start == found[0][0] or bool(MARKER.search(table_text)))
    lead = "" if not text or text.endswith(nl) else nl
    rendered = _template().render(entries=new, new_table=not extend, nl=nl)
    return lead + rendered


# A new LEARNING.md starts like the RunPod scope's own: a ledger table to append rows to.
NEW_FILE = """# LEARNING

Runtime lessons runpod-probe learned about the fleet, appended from its hash-chained ledger
(each row cites its entry: `runpod-probe ledger verify` checks the chain). Rows are only
ever appended; edit the prose around them freely.

## Ledger

| Date | Pattern | Source |
|---|---|---|
"""


def append_learning(path: Path, entries: Sequence[LedgerEntry]) -> int:
    """Append the entries ``path`` does not cite yet; return how many rows were added. A
    missing file is created first, with a ledger table (and its directory)."""
    target = Path(os.path.realpath(path))  # replace the file a symlink points at, not the link
    if not target.exists():
        create(target)
    for _ in range(ATTEMPTS):
        before, data, text = _read(target)
        addition = chunk(text, entries)
        if not addition:
            return 0
        _check_writable(target)
        if _replace(target, data + addition.encode("utf-8"), before):
            return len(cited(addition))
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
