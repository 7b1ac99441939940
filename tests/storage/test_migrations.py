"""Migrations numbered by ``PRAGMA user_version``: a new file gets every table, a file
from release 0.1.0 is upgraded without losing a row, a second run changes nothing, and a
file from a newer release is refused (fail closed)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import run_daemon, until
from release_file import TABLES, release_copy, row_counts
from simconfig import header, pods, write

from probe.cli import main
from probe.daemon import Daemon
from probe.storage import schema
from probe.storage.database import open_database
from probe.storage.migrations import (
    LATEST,
    MIGRATIONS,
    StorageError,
    migrate,
    version_of,
)


def tables_and_version(path: Path) -> tuple[set[str], int]:
    conn = sqlite3.connect(path)
    try:
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        return names, version_of(conn)
    finally:
        conn.close()


def sql_of(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name"))
    finally:
        conn.close()


def test_a_new_database_has_every_table_at_the_latest_version(tmp_path: Path) -> None:
    open_database(tmp_path / "probe.db").close()
    names, version = tables_and_version(tmp_path / "probe.db")
    assert version == LATEST >= 1
    assert set(TABLES) <= set(schema.TABLES) <= names
    assert "state_hourly" in names  # migration 3


def test_the_release_file_upgrades_without_losing_a_row(tmp_path: Path) -> None:
    db = release_copy(tmp_path)
    before = row_counts(db)
    assert tables_and_version(db)[1] == 0
    open_database(db).close()
    assert tables_and_version(db)[1] == LATEST
    assert row_counts(db) == before
    assert main(["ledger", "verify", "--db", str(db)]) == 0


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    db = release_copy(tmp_path)
    open_database(db).close()
    schema_sql, counts = sql_of(db), row_counts(db)
    conn = open_database(db)
    try:
        assert migrate(conn) == 0
    finally:
        conn.close()
    assert (sql_of(db), row_counts(db)) == (schema_sql, counts)


def test_a_ledger_from_before_observed_at_gains_the_column(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    conn = sqlite3.connect(db)
    old = schema.LEDGER[0].replace(",\n    observed_at TEXT", "")
    conn.execute(old)
    conn.execute("INSERT INTO ledger VALUES (1, 't', 'info', 'e', 'ev', 'p', NULL, NULL, NULL, "
                 "NULL, NULL, ?, 'h1')", (schema.GENESIS,))
    conn.commit()
    conn.close()
    open_database(db).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT id, observed_at FROM ledger").fetchall() == [(1, None)]
    finally:
        conn.close()


def test_a_version_2_file_gains_state_seconds_and_the_event_index(tmp_path: Path) -> None:
    db = release_copy(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    for step in MIGRATIONS[:2]:
        step.apply(conn)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    before = row_counts(db)
    open_database(db).close()
    names, version = tables_and_version(db)
    assert version == LATEST and "state_hourly" in names
    assert "ledger_event" in {name for name, _ in sql_of(db)}
    assert row_counts(db) == before


def test_a_version_3_file_gains_the_baseline_hours(tmp_path: Path) -> None:
    """Migration 6: the baselines' hourly samples, empty until the daemon keeps some."""
    db = release_copy(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    for step in MIGRATIONS[:3]:
        step.apply(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    before = row_counts(db)
    open_database(db).close()
    names, version = tables_and_version(db)
    assert (version, "baseline_hours" in names) == (LATEST, True)
    assert "baseline_hours_by_hour" in {name for name, _ in sql_of(db)}
    assert row_counts(db) == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM baseline_hours").fetchone()[0] == 0
    conn.close()


def test_a_version_6_file_loses_the_results_index_by_endpoint(tmp_path: Path) -> None:
    """Migration 7: results are no longer indexed by (endpoint, id); no row goes."""
    db = release_copy(tmp_path)
    conn = sqlite3.connect(db, isolation_level=None)
    for step in MIGRATIONS[:6]:
        step.apply(conn)
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    assert "idx_results_endpoint_id" in {name for name, _ in sql_of(db)}
    before = row_counts(db)
    open_database(db).close()
    names = {name for name, _ in sql_of(db)}
    assert tables_and_version(db)[1] == LATEST >= 7
    assert "idx_results_endpoint_id" not in names
    assert {"idx_results_endpoint_check_name_id", "idx_results_ts"} <= names
    assert row_counts(db) == before


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    open_database(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StorageError, match=f"schema version {LATEST + 1} was written by a newer"):
        open_database(db)
    assert tables_and_version(db)[1] == LATEST + 1, "left as it was"


def test_the_daemon_refuses_a_newer_database_in_one_line(sim: Any, tmp_path: Path,
                                                        sim_env: dict[str, str]) -> None:
    db = tmp_path / "probe.db"
    open_database(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("qwen qwen-healthy"))
    sim.clear_requests()
    done = subprocess.run([sys.executable, "-m", "probe", "run", "--config", str(config)],
                          env=sim_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"runpod-probe: cannot start: storage.path {db}: cannot open the database: schema "
        f"version {LATEST + 1} was written by a newer runpod-probe (this one knows up to "
        f"{LATEST}); refusing to use it"]
    assert not [r for r in sim.requests_seen if "/proxy/" in r.path], "nothing was probed"


def test_the_daemon_runs_on_the_release_file(sim: Any, tmp_path: Path,
                                             sim_env: dict[str, str]) -> None:
    db = release_copy(tmp_path)
    before = row_counts(db)
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + "learning: false\n"
                   + pods("qwen qwen-healthy"))

    async def stored(daemon: Daemon) -> None:
        await until(lambda: row_counts(db)["results"] > before["results"], what="a result")

    run_daemon(config, sim_env, stored)
    after = row_counts(db)
    assert all(after[t] >= before[t] for t in ("results", "ledger", "results_rollup",
                                              "maintenance")), (before, after)
    assert tables_and_version(db)[1] == LATEST
    assert main(["ledger", "verify", "--db", str(db)]) == 0
