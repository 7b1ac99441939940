"""Uptime by time: seconds in each verdict state, per hour, credited on state changes and at
each flush; the ratio is up over the known time (unknown is never a pass, maintenance is
planned); what is stored, pending and still open adds up the same."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probe.status.uptime import UptimeBook, ratio

NOW = datetime(2026, 12, 10, 12, 30, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_time_in_each_state_and_the_ratio(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "probe.db")
    book.observe("qwen", "unknown", ago(120))
    book.observe("qwen", "up", ago(119))
    for minutes in range(118, 60, -1):  # results that change nothing cost nothing
        book.observe("qwen", "up", ago(minutes))
    book.observe("qwen", "down", ago(60))
    book.observe("qwen", "degraded", ago(30))
    book.observe("qwen", "maintenance", ago(15))
    book.observe("qwen", "up", ago(5))
    seconds = book.seconds(["qwen"], NOW)["qwen"]["24h"]
    assert seconds == {"up": 64 * 60, "down": 30 * 60, "degraded": 15 * 60,
                       "maintenance": 10 * 60, "unknown": 60}
    assert book.uptime(["qwen"], NOW)["qwen"]["24h"] == pytest.approx(64 / (64 + 30 + 15))


def test_down_all_run_is_zero_and_degraded_is_not_up(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "probe.db")
    book.observe("dead", "unknown", ago(60))
    book.observe("dead", "down", ago(59))
    book.observe("wrong", "unknown", ago(60))
    book.observe("wrong", "degraded", ago(59))
    book.observe("never", "unknown", ago(60))
    shown = book.uptime(["dead", "wrong", "never", "absent"], NOW)
    assert shown["dead"]["24h"] == 0.0 and shown["wrong"]["24h"] == 0.0
    assert shown["never"]["24h"] is None and shown["absent"]["7d"] is None
    assert book.seconds(["wrong"], NOW)["wrong"]["24h"]["degraded"] == 59 * 60


def test_flushed_pending_and_open_time_add_up_the_same(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    book = UptimeBook(db)
    book.observe("qwen", "up", ago(150))  # from 10:00, across two hour boundaries
    book.observe("qwen", "down", ago(20))
    before = book.seconds(["qwen"], NOW)
    assert book.flush(ago(10)) == 4  # up in three hours, down in one
    assert book.seconds(["qwen"], NOW) == before
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT hour, state, seconds FROM state_hourly ORDER BY hour, state"
                        ).fetchall()
    conn.close()
    assert rows == [("2026-12-10T10", "up", 3600.0), ("2026-12-10T11", "up", 3600.0),
                    ("2026-12-10T12", "down", 600.0), ("2026-12-10T12", "up", 600.0)]
    fresh = UptimeBook(db)  # after a restart: what was stored, nothing open
    assert fresh.seconds(["qwen"], NOW)["qwen"]["24h"]["down"] == 600.0
    assert fresh.uptime(["qwen"], NOW)["qwen"]["7d"] == pytest.approx(7800 / 8400)


def test_the_windows_keep_their_hours(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "probe.db")
    book.observe("qwen", "down", NOW - timedelta(days=3))
    book.observe("qwen", "up", NOW - timedelta(hours=1))
    shown = book.seconds(["qwen"], NOW)["qwen"]
    assert shown["24h"]["down"] == pytest.approx(23 * 3600 - 30 * 60)  # hours after 12:00
    assert shown["7d"]["down"] == pytest.approx(71 * 3600)
    assert shown["24h"]["up"] == shown["7d"]["up"] == 3600


def test_a_failed_flush_keeps_the_seconds(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "missing-dir" / "probe.db")
    book.observe("qwen", "up", ago(10))
    with pytest.raises(sqlite3.Error):
        book.flush(NOW)
    book.path.parent.mkdir()
    assert book.flush(NOW) == 1
    assert UptimeBook(book.path).seconds(["qwen"], NOW)["qwen"]["24h"]["up"] == 600


def test_forgotten_endpoints_stop_counting(tmp_path: Path) -> None:
    book = UptimeBook(tmp_path / "probe.db")
    book.observe("gone", "up", ago(30))
    book.forget(["other"], ago(20))
    assert book.seconds(["gone"], NOW)["gone"]["24h"]["up"] == 600


def test_ratio() -> None:
    assert ratio({"up": 30.0, "down": 10.0, "unknown": 1000.0, "maintenance": 50.0}) == 0.75
    assert ratio({"unknown": 5.0}) is None
