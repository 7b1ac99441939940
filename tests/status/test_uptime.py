"""Uptime from hourly counts: what counts, the two windows, what is not flushed yet, and the
first fill from stored results and daily rollups."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledgerhelpers import result

from probe.outcome import Outcome, ProbeResult
from probe.status.uptime import UptimeBook, counts
from probe.store import open_db

NOW = datetime(2026, 12, 10, 12, 30, tzinfo=UTC)


def _moved(r: ProbeResult, hours_ago: float) -> ProbeResult:
    return replace(r, started_at=NOW - timedelta(hours=hours_ago))


@pytest.mark.parametrize(("outcome", "check", "counted"), [
    (Outcome.OK, "models", True), (Outcome.HTTP_404, "health", True),
    (Outcome.UNKNOWN, "queue", False), (Outcome.RATE_LIMITED, "models", False),
    (Outcome.SKIPPED_BUDGET, "prompt:a", False), (Outcome.EXPECTATION_FAILED, "prompt:a", False),
])
def test_what_counts(outcome: Outcome, check: str, counted: bool) -> None:
    assert counts(result(outcome, check=check)) is counted


def test_the_two_windows_and_what_is_pending(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "probe.db")
    assert book.prepare(NOW) is True
    for hours_ago, outcome in ((1, Outcome.OK), (2, Outcome.HTTP_404), (30, Outcome.HTTP_404),
                               (100, Outcome.OK), (200, Outcome.HTTP_404)):
        book.add(_moved(result(outcome), hours_ago))
    assert book.flush() == 5
    book.add(_moved(result(Outcome.OK), 0.1))  # not flushed yet
    assert book.uptime(["qwen", "other"], NOW) == {
        "qwen": {"24h": pytest.approx(2 / 3), "7d": pytest.approx(3 / 5)},
        "other": {"24h": None, "7d": None}}  # nothing observed is not 100 %


def test_a_failed_flush_keeps_the_counts(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "missing-dir" / "probe.db")
    book.add(result(Outcome.OK))
    with pytest.raises(sqlite3.Error):
        book.flush()
    book.path.parent.mkdir()
    book.prepare(NOW)
    assert book.flush() == 1


def test_a_new_table_is_filled_from_results_and_rollups(tmp_path: Path) -> None:
    path = tmp_path / "probe.db"
    db = open_db(path)
    rows = [("qwen", "models", "ok", NOW - timedelta(hours=3)),
            ("qwen", "models", "http_404", NOW - timedelta(hours=3)),
            ("qwen", "prompt:a", "expectation_failed", NOW - timedelta(hours=3)),
            ("qwen", "queue", "unknown", NOW - timedelta(hours=3)),
            ("qwen", "models", "ok", NOW - timedelta(days=3))]
    db["results"].insert_all([{"id": i + 1, "ts": ts.isoformat(timespec="milliseconds"),
                               "endpoint": e, "kind": "pod", "check_name": c, "outcome": o}
                              for i, (e, c, o, ts) in enumerate(rows)])
    db.execute("INSERT INTO results_rollup VALUES ('2026-12-05', 'qwen', 'models', 'http_404', "
               "4, 0, 0, 0, 0), ('2026-12-08', 'qwen', 'models', 'ok', 9, 0, 0, 0, 0)")
    db.conn.commit()
    db.close()
    book = UptimeBook(path)
    assert book.prepare(NOW) is True
    assert book.prepare(NOW) is False, "filled once"
    # raw: 2 ok of 3 observed (the prompt and the unknown do not count); rollups: only the
    # day before the first raw result (12-05: 4 failures), not 12-08 (raw results cover it)
    assert book.uptime(["qwen"], NOW)["qwen"] == {"24h": pytest.approx(1 / 2),
                                                  "7d": pytest.approx(2 / 7)}
