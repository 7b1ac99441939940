"""What `once` and `gate` show a person: the verdict summary first, the checks after it; a
progress line on stderr while they wait, only when stderr is a terminal (a pty here), never
in a pipe, and colour only on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from simconfig import header, pods, write


def run(args: list[str], env: dict[str, str], stderr: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], stdout=stdout,
                          stderr=stderr, text=True, env={**env, "COLUMNS": "100"}, timeout=60)


def on_a_terminal(args: list[str], env: dict[str, str], side: str) -> tuple[int, str]:
    """Run with stdout or stderr (``side``) on a pty; what the pty received."""
    leader, follower = os.openpty()
    try:
        done = run(args, env, **{side: follower})
    finally:
        os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower closed: all read
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    return done.returncode, received.decode("utf-8", "replace")


def test_once_prints_the_verdicts_first_then_the_checks(sim: Any, tmp_path: Path,
                                                        sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path)
                   + pods("gone deepseek-stopped", "qwen qwen-healthy"))
    done = run(["once", "--config", str(config)], sim_env)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "2 endpoints: 1 down, 1 up"
    assert lines[1].startswith("  DOWN         gone  ") and "http_404" in lines[1]
    assert lines[2] == "  UP           qwen"
    assert lines[3] == "" and lines[4].split()[:3] == ["ENDPOINT", "KIND", "CHECK"]
    assert "\x1b" not in done.stdout + done.stderr, "piped: no colour, no progress"
    assert done.stderr == ""
    checks = run(["once", "--config", str(config), "--checks"], sim_env)
    assert checks.stdout.splitlines()[0].split()[:3] == ["ENDPOINT", "KIND", "CHECK"]


@pytest.mark.parametrize("command", [["once"], ["gate", "slow", "--timeout", "2s",
                                                "--poll", "200ms"]], ids=["once", "gate"])
def test_progress_on_a_terminal_only(sim: Any, tmp_path: Path, sim_env: dict[str, str],
                                     command: list[str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, timeout="900ms")
                   + pods("slow slow-pod checks: [models]"))
    args = [*command, "--config", str(config)]
    code, shown = on_a_terminal(args, sim_env, "stderr")
    assert code == 1
    what = "probing" if command[0] == "once" else "gate slow"
    assert f"| {what}" in shown and "\r\x1b[K" in shown, repr(shown)
    assert shown.endswith("\r\x1b[K"), "the line is erased at the end"
    piped = run(args, sim_env)
    assert piped.stderr == "", "nothing when stderr is not a terminal"


def test_colour_on_a_terminal(sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + pods("gone deepseek-stopped"))
    code, shown = on_a_terminal(["once", "--config", str(config)], sim_env, "stdout")
    assert code == 1
    assert "\x1b[31mDOWN" in shown
    code, plain = on_a_terminal(["once", "--config", str(config)],
                                {**sim_env, "NO_COLOR": "1"}, "stdout")
    assert "\x1b[" not in plain and "DOWN" in plain
