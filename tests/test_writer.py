"""Contract tests of ``SingleWriter``: the same scenarios over every writer built on it (the
results store and the ledger book), Gatus-style. Each writer gets a small adapter: how to
make one at a path, submit one item, and count what is on disk.

What only one writer does (pre-assigned row ids, the store's backlog overflow, the ledger's
sealing and append-only triggers) stays in that writer's own tests."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from helpers import role_of

import probe.writer
from probe.ledger.book import LedgerBook
from probe.ledger.chain import Evidence, LedgerDraft
from probe.outcome import Outcome, ProbeResult
from probe.store import ResultStore
from probe.writer import SingleWriter

BUSY_TIMEOUT_S = 0.05  # a locked write fails fast instead of after the store's 5 s


class QuickStore(ResultStore):
    """The results store with a short busy timeout; the loop under test is the same."""

    def connect(self) -> sqlite_utils.Database:
        db = super().connect()
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return db


def _result(n: int) -> ProbeResult:
    return ProbeResult(endpoint=f"pod-{n}", kind="pod", check="models", outcome=Outcome.OK,
                       started_at=datetime.now(UTC), latency_s=0.01, attempts=1,
                       url="http://127.0.0.1:9/v1", role=role_of("models"))


def _draft(n: int) -> LedgerDraft:
    return LedgerDraft(ts=f"2026-02-18T09:{n:02d}:00+00:00", severity="critical",
                       endpoint=f"pod-{n}", event="down", pattern=f"pod-{n} down (404)",
                       evidence=Evidence("models", "http_404", n, n, "http://127.0.0.1:9"))


@dataclass(frozen=True)
class Adapter:
    """How the contract drives one writer."""

    cls: type[SingleWriter[Any, Any]]
    make: Callable[[Path], Any]
    submit: Callable[[Any, int], object]
    table: str  # where its items land
    written: Callable[[Any], int]  # its own count of items on disk

    def on_disk(self, path: Path) -> int:
        conn = sqlite3.connect(path, timeout=5)
        try:
            return int(conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
        finally:
            conn.close()


STORE = Adapter(
    cls=QuickStore,
    make=lambda path: QuickStore(path, batch_interval_s=0.01),
    submit=lambda store, n: store.record(_result(n)),
    table="results",
    written=lambda store: store.written_total,
)
LEDGER = Adapter(
    cls=LedgerBook,
    make=lambda path: LedgerBook(path, batch_interval_s=0.01, busy_timeout_s=BUSY_TIMEOUT_S),
    submit=lambda book, n: book.submit({}, [_draft(n)]),
    table="ledger",
    written=lambda book: book.entries_total,
)
WRITERS = pytest.mark.parametrize("kind", [STORE, LEDGER], ids=["result-store", "ledger-book"])


def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s:g}s"
        time.sleep(0.01)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "probe.db"


@pytest.fixture
def locker(db: Path) -> Iterator[Callable[[], sqlite3.Connection]]:
    """Another connection that takes the database's write lock (``BEGIN EXCLUSIVE``)."""
    held: list[sqlite3.Connection] = []

    def lock() -> sqlite3.Connection:
        conn = sqlite3.connect(db, timeout=5, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.append(conn)
        return conn

    yield lock
    for conn in held:
        conn.close()


def started(kind: Adapter, db: Path) -> Any:
    """A writer whose thread has its connection: one item is already on disk."""
    writer = kind.make(db)
    kind.submit(writer, 1)
    until(lambda: kind.on_disk(db) == 1, "the first item on disk")
    return writer


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == probe.writer.__name__ and r.levelno >= level]


@WRITERS
def test_items_queued_before_close_are_written(kind: Adapter, db: Path) -> None:
    writer = kind.make(db)
    for n in range(1, 6):
        kind.submit(writer, n)
    writer.close()
    assert kind.on_disk(db) == 5 and kind.written(writer) == 5
    assert (writer.errors_total, writer.dropped_total) == (0, 0)


@WRITERS
def test_closing_an_idle_writer_is_prompt(kind: Adapter, db: Path) -> None:
    writer = kind.make(db)
    began = time.monotonic()
    writer.close()
    assert time.monotonic() - began < writer.idle_poll_s, "the stop marker wakes the loop"


@WRITERS
def test_a_locked_database_is_retried_and_nothing_is_dropped(
        kind: Adapter, db: Path, locker: Callable[[], sqlite3.Connection],
        caplog: pytest.LogCaptureFixture) -> None:
    writer = started(kind, db)
    blocker = locker()
    kind.submit(writer, 2)
    until(lambda: writer.errors_total >= 1, "a failed write")
    assert kind.on_disk(db) == 1 and writer.dropped_total == 0
    assert any(f"cannot write 1 {writer.what}" in line and "will retry" in line
               for line in lines(caplog))
    blocker.rollback()
    until(lambda: kind.on_disk(db) == 2, "the kept item written after the unlock")
    writer.close()
    assert kind.written(writer) == 2 and writer.dropped_total == 0


@WRITERS
def test_a_write_that_keeps_failing_at_shutdown_is_counted_and_logged(
        kind: Adapter, db: Path, locker: Callable[[], sqlite3.Connection],
        caplog: pytest.LogCaptureFixture) -> None:
    writer = started(kind, db)
    locker()
    kind.submit(writer, 2)
    kind.submit(writer, 3)
    writer.close()
    assert writer.dropped_total == 2 and writer.errors_total >= 1
    assert kind.on_disk(db) == 1 and kind.written(writer) == 1
    assert any(f"cannot write 2 {writer.what} at shutdown" in line and "lost" in line
               for line in lines(caplog)), lines(caplog)


@WRITERS
def test_close_cuts_a_long_back_off_short(
        kind: Adapter, db: Path, locker: Callable[[], sqlite3.Connection],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe.writer, "FIRST_BACKOFF_S", 60.0)
    writer = started(kind, db)
    locker()
    kind.submit(writer, 2)
    until(lambda: writer.errors_total >= 1, "a failed write (a 60 s back-off begins)")
    began = time.monotonic()
    writer.close(timeout_s=30.0)
    assert time.monotonic() - began < 5.0, "the stop request ends the back-off"
    assert writer.dropped_total == 1, "the last attempt failed and its loss was counted"


def _unopenable(self: Any) -> Any:
    raise sqlite3.OperationalError("unable to open database file")


@WRITERS
def test_a_database_that_cannot_be_opened_counts_the_loss(
        kind: Adapter, db: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(kind.cls, "connect", _unopenable)  # the writer thread's connection
    writer = kind.make(db)
    for n in range(1, 4):
        kind.submit(writer, n)
    writer.close()
    assert writer.dropped_total == 3 and kind.written(writer) == 0
    assert kind.on_disk(db) == 0
    assert any("cannot open its database: unable to open database file" in line
               for line in lines(caplog))


@WRITERS
def test_a_database_that_cannot_be_opened_logs_how_many_were_lost(
        kind: Adapter, db: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(kind.cls, "connect", _unopenable)
    writer = kind.make(db)
    for n in range(1, 4):
        kind.submit(writer, n)
    writer.close()
    assert writer.dropped_total == 3
    assert any(f"3 {writer.what}" in line for line in lines(caplog)), lines(caplog)


def test_what_the_last_upkeeps_queue_at_shutdown_is_written_then_counted(
        db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An upkeep at shutdown that queues an item (a pattern's draft) gets it written; one
    that queues something every time is cut off after ``FINAL_ROUNDS``, the rest counted
    and logged, never lost silently."""
    stopping: list[int] = []
    upkeeps: list[int] = []

    def upkeep(_conn: sqlite3.Connection) -> None:
        if stopping:
            stopping.append(len(stopping))
            book.submit({}, [_draft(50 + len(stopping))])
        upkeeps.append(1)

    # an hour between batches: after the first item and its upkeep the writer waits for
    # the stop
    book = LedgerBook(db, maintenance=upkeep, batch_interval_s=3600)
    book.submit({}, [_draft(1)])
    until(lambda: LEDGER.on_disk(db) == 1 and bool(upkeeps), "the first item and upkeep")
    stopping.append(0)
    book.close()
    assert LEDGER.on_disk(db) == 1 + probe.writer.FINAL_ROUNDS
    assert book.dropped_total == 1
    assert any("queued by its last upkeeps at shutdown are not written" in line
               for line in lines(caplog))
