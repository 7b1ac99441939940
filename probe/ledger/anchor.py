"""The ledger's head, anchored outside its table.

The hash chain shows any entry edited, reordered or removed *before* the last one, but not
the last ones removed (or all of them, or the table dropped) by someone who dropped the
triggers: what is left is still a valid chain. So the ledger's writer keeps the head it
wrote, id and full hash, in a file beside the database, ``<db>.ledger-head`` (one JSON
line), replaced atomically after every batch that appended entries, from the writer's
thread. ``ledger verify`` and the daemon's chain watch then require that the table still
holds the anchored entry with that hash.

The anchor may lag the table (a crash between the commit and the anchor write, two
processes sharing the database): an anchor behind the head is fine, one the table does
not reach is entries removed. A ledger from before anchors (no file yet) is anchored at
its current head when the daemon starts; until then ``ledger verify`` says it is
unanchored. An anchor the table contradicts is never moved: the evidence stays until an
operator removes the file (after restoring the database from a backup on purpose).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from probe.atomic import write_atomic
from probe.ledger.chain import ChainProblem

SUFFIX = ".ledger-head"
HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_BYTES = 4096


class AnchorError(Exception):
    """The anchor file exists but is not a ledger head."""


@dataclass(frozen=True, slots=True)
class Head:
    id: int
    hash: str

    def __str__(self) -> str:
        return f"#{self.id} sha256:{self.hash[:12]}"


def anchor_path(db: Path) -> Path:
    return db.with_name(db.name + SUFFIX)


def read_anchor(db: Path) -> Head | None:
    """The anchored head, None when there is no anchor yet, ``AnchorError`` otherwise."""
    path = anchor_path(db)
    try:
        with path.open("rb") as source:
            data = source.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        value = json.loads(data.decode("utf-8")) if len(data) <= MAX_BYTES else None
    except (UnicodeDecodeError, ValueError):
        value = None
    if not (isinstance(value, dict) and type(value.get("id")) is int and value["id"] > 0
            and isinstance(value.get("hash"), str) and HASH.match(value["hash"])):
        raise AnchorError(f"{path} is not a ledger head (expected "
                          '{"id": N, "hash": "<64 hex>"})')
    return Head(value["id"], value["hash"])


def write_anchor(db: Path, head: Head) -> None:
    """Replace the anchor atomically (temp file, fsync, rename)."""
    text = json.dumps({"id": head.id, "hash": head.hash}) + "\n"
    write_atomic(anchor_path(db), text.encode("utf-8"), 0o644)


def table_head(conn: sqlite3.Connection) -> Head | None:
    row = conn.execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else None


def has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'ledger'").fetchone() is not None


def anchor_problem(conn: sqlite3.Connection, anchor: Head, name: str) -> ChainProblem | None:
    """What the table lacks of what ``anchor`` (the file ``name``) vouches for, or None."""
    if not has_table(conn):
        return ChainProblem(1, f"missing: the ledger table is gone, and {name} records head "
                               f"{anchor}: the table was dropped")
    row = conn.execute("SELECT hash FROM ledger WHERE id = ?", (anchor.id,)).fetchone()
    if row is None:
        last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM ledger").fetchone()[0]
        return ChainProblem(last + 1, f"missing: {name} records head {anchor}, the ledger "
                                      f"ends at #{last}: entries removed from the end")
    if row[0] != anchor.hash:
        return ChainProblem(anchor.id, f"sha256:{row[0][:12]} is not the anchored head "
                                       f"{anchor} ({name}): entries replaced")
    return None
