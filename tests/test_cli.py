"""The command line as a process: global options anywhere, usage errors as exit 2 with one
line (never a traceback), every command's help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probe.app import PLUGINS
from probe.cli import build_parser

CONFIG = "endpoints:\n  - {name: p, kind: pod, pod_id: x}\n"


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "RUNPOD_API_KEY": "k", **(env or {})})


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_level_is_accepted_before_and_after_the_command(tmp_path: Path,
                                                            where: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    common = ["--log-level", "debug"]
    rest = ["check-config", "--config", str(config)]
    done = probe(*(common + rest if where == "before" else rest + common))
    assert done.returncode == 0, done.stderr
    assert "ok (1 endpoints)" in done.stdout


@pytest.mark.parametrize("args", [
    ("--log-level", "LOUD", "check-config"),
    ("check-config", "--log-level", "LOUD"),
], ids=["before", "after"])
def test_a_bad_log_level_is_a_usage_error(args: tuple[str, ...]) -> None:
    done = probe(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        "error: argument --log-level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "got 'LOUD'")


def test_the_environment_sets_the_default_log_level(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    done = probe("check-config", "--config", str(config),
                 env={"RUNPOD_PROBE_LOG_LEVEL": "NOPE"})
    assert done.returncode == 0, "a bad variable falls back to INFO instead of failing"


def test_every_command_has_help() -> None:
    parser = build_parser(PLUGINS)
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    names = set(commands.choices)  # type: ignore[attr-defined]
    assert names >= {"run", "once", "check-config", "gate", "ledger", "learning", "discover",
                     "generate", "demo", "init"}
    for name in sorted(names):
        done = probe(name, "--help")
        assert done.returncode == 0 and "--log-level" in done.stdout, name


def test_check_config_refuses_tries_that_do_not_fit_the_interval(tmp_path: Path) -> None:
    # issue 20: tries 100000 was accepted; a pod that flipped to 502 stayed up for 90 s
    config = tmp_path / "c.yaml"
    config.write_text("endpoints:\n  - {name: p, kind: pod, pod_id: x, interval: 5s, "
                      "timeout: 3s, tries: 100000}\n")
    done = probe("check-config", "--config", str(config))
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = [text for text in done.stderr.splitlines() if "endpoints[0]" in text]
    assert line.endswith("endpoints[0].tries: 100000 tries x timeout 3s + 99999 x retry_delay "
                         "0.5s = 349999.5s is longer than the interval (5s): a check that "
                         "cannot pass must not hold the endpoint's next run back")
