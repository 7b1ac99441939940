"""The kept release file is what the upgrade tests need: every table has rows, and its
ledger verifies."""

from __future__ import annotations

from pathlib import Path

from release_file import release_copy, row_counts

from probe.cli import main


def test_every_table_of_the_release_holds_rows(tmp_path: Path) -> None:
    counts = row_counts(release_copy(tmp_path))
    assert all(counts.values()), counts


def test_the_release_ledger_verifies(tmp_path: Path) -> None:
    db = release_copy(tmp_path)
    assert main(["ledger", "verify", "--db", str(db)]) == 0
