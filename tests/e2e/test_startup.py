"""Start-up failures are configuration or environment problems that a restart cannot fix:
one line naming the path or address and the cause, exit 2 (which the unit does not restart
on), no traceback, nothing probed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import tool
from simconfig import header, pods, write

from probe.store import ResultStore


def start(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", "run", "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=60)


def busy_port(tmp_path: Path, held: list[socket.socket]) -> tuple[str, str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    held.append(s)
    port = s.getsockname()[1]
    return f'"127.0.0.1:{port}"', f"metrics.listen 127.0.0.1:{port}: cannot listen: Address " \
                                  "already in use"


def foreign_address(tmp_path: Path, held: list[socket.socket]) -> tuple[str, str]:
    # TEST-NET-1 (RFC 5737): never an address of this machine
    return '"192.0.2.1:9464"', "metrics.listen 192.0.2.1:9464: cannot listen: Cannot " \
                               "assign requested address"


CASES: list[tuple[str, str | None, Callable[..., Any] | None, str]] = [
    ("metrics-port-in-use", None, busy_port, ""),
    ("address-not-local", None, foreign_address, ""),
    ("storage-under-a-file", "{tmp}/a-file/probe.db", None,
     "storage.path {tmp}/a-file/probe.db: cannot open the database: {tmp}/a-file is a file, not a directory"),
    ("storage-dir-not-writable", "/sys/probe.db", None,
     "storage.path /sys/probe.db: cannot open the database:"),
]


@pytest.mark.parametrize(("storage", "listen", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_start_up_failure_is_one_line_and_exit_2(sim: Any, tmp_path: Path,
                                                 sim_env: dict[str, str], storage: str | None,
                                                 listen: Any, expected: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    text = header(sim, tmp_path)
    held: list[socket.socket] = []
    if listen is not None:
        address, expected = listen(tmp_path, held)
        text = text.replace('"127.0.0.1:0"', address)
    if storage is not None:
        text = text.replace(f'"{tmp_path / "probe.db"}"', f'"{storage.format(tmp=tmp_path)}"')
        text += "learning: false\n"  # else LEARNING.md beside it fails the config check first
    config = write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy"))
    sim.clear_requests()
    try:
        done = start(config, sim_env)
    finally:
        for s in held:
            s.close()
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "runpod-probe:"
              in line]
    assert done.returncode == 2, done.stderr
    assert errors == [errors[-1]] and errors[-1].startswith(
        "runpod-probe: cannot start: " + expected.format(tmp=tmp_path)), done.stderr
    assert "Traceback" not in done.stderr
    assert not [r for r in sim.requests_seen if "/proxy/" in r.path], "nothing was probed"


def unprivileged() -> list[str]:
    """What to run the daemon under so that file permissions hold: root writes a 0444 file
    (CAP_DAC_OVERRIDE), so as root those capabilities leave the bounding set (setpriv)."""
    if os.geteuid() != 0:
        return []
    return [tool("setpriv"), "--bounding-set=-dac_override,-dac_read_search"]


def read_only_file(db: Path) -> None:
    ResultStore(db).close()  # a database a previous run left, then made read-only
    db.chmod(0o444)


def read_only_directory(db: Path) -> None:
    ResultStore(db).close()
    db.parent.chmod(0o555)


def directory_in_its_place(db: Path) -> None:
    db.mkdir(parents=True)


def not_sqlite(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_text("runpod-probe results, or so this file claims\n" * 50)


UNWRITABLE: list[tuple[Callable[[Path], None], str]] = [
    (read_only_file, "attempt to write a readonly database"),
    (read_only_directory, "attempt to write a readonly database"),
    (directory_in_its_place, "unable to open database file"),
    (not_sqlite, "file is not a database"),
]


@pytest.mark.parametrize(("make", "cause"), UNWRITABLE, ids=[m.__name__ for m, _ in UNWRITABLE])
def test_a_database_that_cannot_be_written_stops_the_start(
        sim: Any, tmp_path: Path, sim_env: dict[str, str], make: Callable[[Path], None],
        cause: str) -> None:
    """A read-only database opened and read fine, so the daemon probed on, storing nothing
    and logging "attempt to write a readonly database" on every batch: it is write-tested
    at start instead (exit 2, one line with the path)."""
    db = tmp_path / "state" / "probe.db"
    text = header(sim, tmp_path).replace(f'"{tmp_path / "probe.db"}"', f'"{db}"')
    config = write(tmp_path / "c.yaml", text + "learning: false\n" + pods("qwen qwen-healthy"))
    make(db)
    sim.clear_requests()
    try:
        done = subprocess.run([*unprivileged(), sys.executable, "-m", "probe", "run",
                               "--config", str(config)], env=sim_env, capture_output=True,
                              text=True, timeout=60)
    finally:
        db.parent.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"runpod-probe: cannot start: storage.path {db}: cannot open the database: {cause}"]
    assert not [r for r in sim.requests_seen if "/proxy/" in r.path], "nothing was probed"
