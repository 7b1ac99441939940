"""``runpod-probe ledger verify|list`` and ``runpod-probe learning``: exit codes as the README
documents them (verify 0 intact / 1 broken / 2 no database; list 0; learning 0 / 1 ledger
fails verify / 2 file not appendable), what each prints, and ``--since``. Bad input is one
line and exit 2; none of them needs the config's secrets."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from ledgerhelpers import draft

from probe.cli import main
from probe.ledger.book import append, connect
from probe.ledger.cli import UsageError, parse_since
from probe.storage import schema

TABLE = "| Date | Pattern | Source |\n|---|---|---|\n"
SEED = Path(__file__).parents[1] / "data" / "learning" / "LEARNING.md"


def seeded(path: Path, *endpoints: str) -> None:
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for n, name in enumerate(endpoints, start=1):  # appended a minute apart
        append(conn, [draft(n, name)], now=datetime(2026, 2, 18, 9, n, tzinfo=UTC))
    conn.execute("COMMIT")
    conn.close()


def tamper(path: Path, entry_id: int, column: str = "pattern",
           value: str = "RunPod pod qwen was fine") -> None:
    """Edit an entry behind the append-only triggers' back."""
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER ledger_no_update")
    raw.execute(f"UPDATE ledger SET {column} = ? WHERE id = ?", (value, entry_id))
    raw.commit()
    raw.close()


# -- databases in the states the exit codes tell apart -------------------------------------
def intact(path: Path) -> None:
    seeded(path, "qwen", "deepseek", "vllm")


def broken(path: Path) -> None:
    intact(path)
    tamper(path, 2)


def empty(path: Path) -> None:
    connect(path).close()


def results_only(path: Path) -> None:
    """A results table and nothing else (what release 0.1.0's `once --store` left: the
    storage package now creates every table, so the file is made by hand)."""
    conn = sqlite3.connect(path)
    for statement in schema.RESULTS:
        conn.execute(statement)
    conn.close()


def missing(path: Path) -> None:
    pass


def ledger_verify(db: Path, _learning: Path) -> list[str]:
    return ["ledger", "verify", "--db", str(db)]


def ledger_list(db: Path, _learning: Path) -> list[str]:
    return ["ledger", "list", "--db", str(db)]


def learning(db: Path, file: Path) -> list[str]:
    return ["learning", "--file", str(file), "--db", str(db)]


Command = Callable[[Path, Path], list[str]]
CASES = [
    (ledger_verify, intact, 0, "out", "ledger ok: 3 entries, head sha256:"),
    (ledger_verify, empty, 0, "out", "ledger ok: 0 entries"),
    (ledger_verify, results_only, 2, "err", "has no ledger table"),
    (ledger_verify, broken, 1, "err",
     "ledger verify FAILED: ledger entry #2: content does not match its hash"),
    (ledger_verify, missing, 2, "err", "no database at"),
    (ledger_list, intact, 0, "out", "down (404) — case 3"),
    (ledger_list, empty, 0, "out", "no ledger entries"),
    (ledger_list, results_only, 2, "err", "has no ledger table"),
    (ledger_list, broken, 0, "out", "RunPod pod qwen was fine"),  # listing is not verifying
    (ledger_list, missing, 2, "err", "no database at"),
    (learning, intact, 0, "out", "appended 3 rows"),
    (learning, empty, 0, "out", "up to date"),
    (learning, broken, 1, "err", "not appending, ledger verify FAILED: ledger entry #2"),
    (learning, missing, 2, "err", "no database at"),
]


@pytest.mark.parametrize(
    ("command", "database", "code", "stream", "says"), CASES,
    ids=[f"{c[0].__name__.replace('_', '-')}-{c[1].__name__.replace('_', '-')}-exits-{c[2]}"
         for c in CASES])
def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: Command,
                    database: Callable[[Path], None], code: int, stream: str,
                    says: str) -> None:
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    database(db)
    file.write_text(TABLE)
    before = file.read_bytes()
    assert main(command(db, file)) == code
    captured = capsys.readouterr()
    assert says in (captured.out if stream == "out" else captured.err)
    if code != 0:
        assert file.read_bytes() == before, "a failing command writes nothing"


def _no_table(path: Path) -> None:
    path.write_text("# LEARNING\n\nNothing here yet.\n")


def _absent(path: Path) -> None:
    path.unlink()


def _read_only(path: Path) -> None:
    path.chmod(0o444)


def _other_ledger(path: Path) -> None:
    path.write_text(TABLE + "| 2026-02-18 | x | ledger #1 sha256:0123456789ab |\n")


def _binary(path: Path) -> None:
    path.write_bytes(TABLE.encode() + b"\xff\xfe\n")


@pytest.mark.parametrize(
    ("spoil", "says"),
    [(_no_table, "has no | Date | Pattern | Source | table to append to"),
     (_read_only, "is not writable"),
     (_other_ledger, "cites ledger #1 sha256:0123456789ab but this ledger has sha256:"),
     (_binary, "is not UTF-8 text")],
    ids=["no-table", "read-only", "from-another-ledger", "not-utf8"],
)
def test_learning_exits_2_on_a_file_that_is_not_appendable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        spoil: Callable[[Path], None], says: str) -> None:
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    intact(db)
    file.write_text(TABLE)
    spoil(file)
    before = file.read_bytes() if file.exists() else None
    assert main(learning(db, file)) == 2
    err = capsys.readouterr().err
    assert f"{file} {says}" in err and "nothing was written" in err
    assert (file.read_bytes() if file.exists() else None) == before


@pytest.mark.parametrize("command", [ledger_verify, ledger_list, learning],
                         ids=["ledger-verify", "ledger-list", "learning"])
def test_an_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   command: Command) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("bogus: 1\n")
    argv = command(tmp_path / "p.db", tmp_path / "LEARNING.md")
    argv[argv.index("--db"):argv.index("--db") + 2] = ["--config", str(bad)]
    assert main(argv) == 2
    assert "bogus: unknown key" in capsys.readouterr().err


def test_the_database_comes_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key-0000")
    db = tmp_path / "state" / "p.db"
    db.parent.mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{path: {db}}}\n"
                      "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n")
    assert main(["ledger", "verify", "--config", str(config)]) == 2
    assert f"no database at {db}" in capsys.readouterr().err
    intact(db)
    assert main(["ledger", "verify", "--config", str(config)]) == 0
    assert "ledger ok: 3 entries" in capsys.readouterr().out


def test_tampering_behind_dropped_triggers_is_named_by_ledger_verify(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.db"
    seeded(path, *["qwen"] * 5)
    assert main(["ledger", "verify", "--db", str(path)]) == 0
    assert "ledger ok: 5 entries" in capsys.readouterr().out
    tamper(path, 4)
    assert main(["ledger", "verify", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert "ledger entry #4: content does not match its hash" in err
    assert "3 entries before it are intact" in err


def test_list_filters_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.db"
    seeded(path, "qwen", "deepseek", "qwen")
    assert main(["ledger", "list", "--db", str(path), "--endpoint", "qwen", "--json",
                 "--since", "2026-02-18T09:02:00"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["id"], e["endpoint"]) for e in listed] == [(3, "qwen")]
    assert listed[0]["hash"] and listed[0]["first_row"] == 3
    assert main(["ledger", "list", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ID", "TIME", "SEVERITY", "ENDPOINT", "EVENT",
                                           "PATTERN"]
    assert "#2" in out and "down (404) — case 2" in out
    assert main(["ledger", "list", "--db", str(path), "--since", "yesterday"]) == 2
    assert "--since: expected a date" in capsys.readouterr().err


def test_learning_refuses_to_export_a_tampered_ledger(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    shutil.copyfile(SEED, file)
    seeded(db, "qwen", "deepseek")
    assert main(learning(db, file)) == 0
    assert "appended 2 rows" in capsys.readouterr().out
    assert main(learning(db, file)) == 0
    assert "up to date" in capsys.readouterr().out
    tamper(db, 1, "severity", "info")
    before = file.read_bytes()
    assert main(learning(db, file)) == 1
    assert "ledger entry #1" in capsys.readouterr().err
    assert file.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-02-18", "2026-02-18T00:00:00+00:00"),
     ("2026-02-18T10:30:00", "2026-02-18T10:30:00+00:00"),
     ("2026-02-18T12:30:00+02:00", "2026-02-18T10:30:00+00:00"),
     ("24h", "2026-02-17T12:00:00+00:00"),
     ("30m", "2026-02-18T11:30:00+00:00")],
    ids=["date", "naive-is-utc", "offset", "age-hours", "age-minutes"],
)
def test_since_accepts_dates_times_and_ages(text: str, expected: str) -> None:
    with freeze_time("2026-02-18T12:00:00Z"):
        assert parse_since(text) == expected


def test_since_rejects_anything_else() -> None:
    with pytest.raises(UsageError, match='got "last tuesday"'):
        parse_since("last tuesday")


def test_learning_creates_a_missing_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    intact(db)
    assert main(learning(db, file)) == 0
    assert "appended" in capsys.readouterr().out
    assert file.read_text().startswith("# LEARNING") and "| Date | Pattern | Source |" in \
        file.read_text()


def test_learning_refuses_a_missing_directory(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    # issue 24: `learning --file /nonexistent/LEARNING.md` created the directory (a typo)
    db, file = tmp_path / "p.db", tmp_path / "nonexistent" / "LEARNING.md"
    intact(db)
    assert main(learning(db, file)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"runpod-probe: {file}: no directory {file.parent}; nothing was written"]
    assert not file.parent.exists()


@pytest.mark.parametrize("where", ["/proc/runpod-probe-test/LEARNING.md", "{tmp}"],
                         ids=["under-proc", "a-directory"])
@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_learning_path_no_file_can_be_appended_at_stops_the_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        where: str, command: str) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "test-key-0000")
    learning_path = where.format(tmp=tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{path: {tmp_path / 'p.db'}}}\n"
                      f"learning: {{path: {learning_path}}}\n"
                      "metrics: {listen: '127.0.0.1:0'}\n"
                      "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n")
    exit_code: list[int] = []
    started = time.monotonic()
    # in a thread: a daemon that starts anyway (the bug) must not hang the test run
    worker = threading.Thread(target=lambda: exit_code.append(
        main([command, "--config", str(config)])), daemon=True)
    worker.start()
    worker.join(10)
    assert exit_code == [2], "refused before probing"
    assert time.monotonic() - started < 3
    (line,) = capsys.readouterr().err.splitlines()  # one problem, one line
    assert line.startswith(f"runpod-probe: invalid config {config}: learning.path: "
                           f"{learning_path} ")


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def a_directory(path: Path) -> None:
    path.mkdir()


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    intact(path)
    data = path.read_bytes()
    path.write_bytes(data[:100])  # the header survives, the pages do not


@pytest.mark.parametrize("database", [not_sqlite, a_directory, missing, zero_bytes,
                                      results_only, truncated],
                         ids=lambda f: f.__name__.replace("_", "-"))
@pytest.mark.parametrize("command", [ledger_verify, ledger_list, learning],
                         ids=["ledger-verify", "ledger-list", "learning"])
def test_a_database_that_is_not_a_ledger_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: Command,
        database: Callable[[Path], None]) -> None:
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    database(db)
    file.write_text(TABLE)
    started = time.monotonic()
    assert main(command(db, file)) == 2
    assert time.monotonic() - started < 3
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("runpod-probe: ") and str(db) in lines[0], \
        captured.err
    assert captured.out == ""
    assert file.read_text() == TABLE


@pytest.mark.parametrize("command", [ledger_verify, ledger_list, learning],
                         ids=["ledger-verify", "ledger-list", "learning"])
def test_ledger_commands_need_no_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch,
                                         command: Command) -> None:
    """They send nothing: the config's key variables may be unset."""
    for name in ("RUNPOD_API_KEY", "VLLM_API_KEY", "TEAM_KEY"):
        monkeypatch.delenv(name, raising=False)
    db, file = tmp_path / "p.db", tmp_path / "LEARNING.md"
    intact(db)
    file.write_text(TABLE)
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{path: {db}}}\n"
                      "discovery: {pods: true}\n"
                      "endpoints:\n"
                      "  - {name: s, kind: serverless, endpoint_id: e}\n"
                      "  - {name: p, kind: pod, pod_id: aq0t10sits4kz2, api_key_env: TEAM_KEY}\n")
    argv = command(db, file)
    argv[argv.index("--db"):argv.index("--db") + 2] = ["--config", str(config)]
    assert main(argv) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "unset" not in captured.out


def test_a_reader_that_stops_early_is_a_quiet_exit(tmp_path: Path) -> None:
    """`ledger list | head -1`: the pipe closes under a long listing; no traceback."""
    import subprocess
    import sys

    db = tmp_path / "p.db"
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    append(conn, [draft(n % 60, f"pod-{n}") for n in range(3000)],
           now=datetime(2026, 2, 18, 9, 0, tzinfo=UTC))
    conn.execute("COMMIT")
    conn.close()
    done = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m probe ledger list --db "{db}" | head -1; '
                       'exit "${PIPESTATUS[0]}"'],
        capture_output=True, text=True, timeout=60)
    assert len(done.stdout.splitlines()) == 1
    assert done.stderr == "", done.stderr
    assert done.returncode == 141  # 128 + SIGPIPE, as a Unix tool's exit says it
