"""Retention: old raw results are rolled up, then pruned; ledger entries never are."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from freezegun import freeze_time
from helpers import role_of
from ledgerhelpers import draft

from probe.ledger.book import append, connect, read_entries
from probe.outcome import Outcome, ProbeResult
from probe.storage.retention import Pruner, prune_results
from probe.store import ResultStore, history

DAY = 86400.0


def stored(path: Path, days_ago: list[float], now: datetime) -> None:
    store = ResultStore(path, batch_interval_s=0.01)
    for i, age in enumerate(days_ago):
        outcome = Outcome.OK if i % 2 == 0 else Outcome.HTTP_404
        store.record(ProbeResult("qwen", "pod", "models", outcome,
                                 now - timedelta(days=age), 0.1 * (i + 1), 1, "http://x", role=role_of("models")))
    store.close()
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    append(conn, [draft(1), draft(2)])
    conn.execute("COMMIT")
    conn.close()


def test_old_results_are_rolled_up_then_pruned_and_the_ledger_kept(tmp_path: Path) -> None:
    path, now = tmp_path / "p.db", datetime(2026, 3, 20, 12, tzinfo=UTC)
    stored(path, [40.0, 40.0, 35.0, 31.0, 29.0, 0.0], now)
    conn = connect(path)
    assert prune_results(conn, 30 * DAY, now) == 4
    assert [r["id"] for r in history(path, "qwen")] == [6, 5]
    rollup = conn.execute("SELECT day, outcome, results, round(latency_s_sum, 3), "
                          "latency_s_max, first_id, last_id FROM results_rollup "
                          "ORDER BY day, outcome").fetchall()
    assert rollup == [("2026-02-08", "http_404", 1, 0.2, 0.2, 2, 2),
                      ("2026-02-08", "ok", 1, 0.1, 0.1, 1, 1),
                      ("2026-02-13", "ok", 1, 0.3, 0.3, 3, 3),
                      ("2026-02-17", "http_404", 1, 0.4, 0.4, 4, 4)]
    assert [e.id for e in read_entries(conn)] == [1, 2], "the ledger is never pruned"
    assert prune_results(conn, 30 * DAY, now) == 0


def test_rollup_accumulates_across_runs(tmp_path: Path) -> None:
    path, now = tmp_path / "p.db", datetime(2026, 3, 20, 12, tzinfo=UTC)
    stored(path, [40.0, 40.0], now)
    conn = connect(path)
    assert prune_results(conn, 30 * DAY, now) == 1, "the newest row anchors the ids"
    store = ResultStore(path, batch_interval_s=0.01)
    for age, latency in ((40.0, 0.5), (0.0, 0.1)):
        store.record(ProbeResult("qwen", "pod", "models", Outcome.OK,
                                 now - timedelta(days=age), latency, 1, "http://x", role=role_of("models")))
    store.close()
    assert prune_results(conn, 30 * DAY, now) == 2
    assert conn.execute("SELECT results, latency_s_max, first_id, last_id FROM results_rollup "
                        "WHERE outcome = 'ok'").fetchone() == (2, 0.5, 1, 3)
    assert [r["id"] for r in history(path, "qwen")] == [4], "ids are never reused"


def test_pruner_uses_the_wall_clock_and_runs_at_most_hourly(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    stored(path, [31.0, 30.0 - 1 / 48, 0.0], datetime(2026, 3, 20, 12, tzinfo=UTC))
    conn = connect(path)
    pruner = Pruner(30 * DAY, every_s=3600)
    with freeze_time("2026-03-20T12:00:00Z") as clock:
        pruner(conn)
        assert pruner.pruned_total == 1
        clock.tick(1800)  # the second result is now over 30 days old, but the hour is not up
        pruner(conn)
        assert pruner.pruned_total == 1
        clock.tick(1800)
        pruner(conn)
        assert pruner.pruned_total == 2


def test_a_database_without_results_is_left_alone(tmp_path: Path) -> None:
    assert prune_results(connect(tmp_path / "p.db"), DAY) == 0


def test_the_results_writer_prunes_without_the_ledger(tmp_path: Path) -> None:
    """Retention belongs to the results' writer: it runs with no ledger started."""
    path = tmp_path / "p.db"
    stored(path, [40.0, 0.0], datetime.now(UTC))
    store = ResultStore(path, batch_interval_s=0.01, retention_s=30 * DAY)
    try:
        deadline = time.monotonic() + 10
        while store.pruned_total != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        store.close()
    assert store.pruned_total == 1
    assert [r["id"] for r in history(path, "qwen")] == [2]
    idle = ResultStore(path)
    idle.close()
    assert idle.pruned_total is None, "no retention configured"
