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


@pytest.mark.parametrize("variable", ["RUNPOD_PROBE_LOG_LEVEL", "RUNPOD_PROBE_LOG_FORMAT"])
def test_an_invalid_log_variable_is_an_error_not_a_silent_default(tmp_path: Path,
                                                                  variable: str) -> None:
    # issue 24: RUNPOD_PROBE_LOG_LEVEL=LOUD silently became INFO
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    done = probe("check-config", "--config", str(config), env={variable: "LOUD"})
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"runpod-probe: ${variable}: expected one of ")
    assert line.endswith("got 'LOUD'")


def test_the_environment_sets_the_default_log_level(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    done = probe("--log-format", "json", "check-config", "--config", str(config),
                 env={"RUNPOD_PROBE_LOG_LEVEL": "debug"})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_accepted_before_and_after_the_command(tmp_path: Path, where: str) -> None:
    # issue 24: `runpod-probe --config x check-config` said "invalid choice: 'x'"
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    common, rest = ["--config", str(config)], ["check-config"]
    done = probe(*(common + rest if where == "before" else rest + common))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{config}: ok (1 endpoints)")


def test_a_global_option_before_the_command_is_not_overwritten_by_its_default(
        tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    args = build_parser(PLUGINS).parse_args(["--config", str(config), "--log-level", "debug",
                                             "ledger", "list"])
    assert (args.config, args.log_level) == (str(config), "DEBUG")


@pytest.mark.parametrize("group", ["ledger", "maintenance"])
def test_a_bare_group_command_prints_its_help(group: str) -> None:
    # issue 24: `ledger` alone printed "required: ledger_command"
    done = probe(group)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"usage: runpod-probe {group}")
    assert "positional arguments" in done.stderr


def test_an_unknown_endpoint_suggests_the_close_names(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("endpoints:\n  - {name: qwen-pod, kind: pod, pod_id: x}\n"
                      "  - {name: deepseek-pod, kind: pod, pod_id: y}\n")
    done = probe("once", "--config", str(config), "--endpoint", "qwen-pdo")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        'runpod-probe: no endpoint named "qwen-pdo" (did you mean qwen-pod?)']


def test_version_names_the_package_version_and_the_checkout_commit() -> None:
    from probe import __version__
    from probe.build import commit

    done = probe("--version")
    assert done.returncode == 0
    assert done.stdout.startswith(f"runpod-probe {__version__}")
    if commit():  # run from a git checkout (this repository's tests are)
        assert done.stdout.strip().endswith(f"(commit {commit()})")


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


def test_generate_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    # issue 24: a 33-line traceback
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    done = probe("generate", "--out", str(blocker / "out"), "--grafana-url",
                 "https://grafana.example.com", "--runbook-url", "https://wiki.example.com/rb")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"runpod-probe generate: cannot write {blocker / 'out'}")


def test_generate_warns_when_the_alerts_links_would_be_relative(tmp_path: Path) -> None:
    done = probe("generate", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "runpod-probe generate: warning: the alerts' links are relative (no --grafana-url or "
        "--runbook-url given): a pager or chat cannot open them"]
    absolute = probe("generate", "--out", str(tmp_path), "--grafana-url",
                     "https://grafana.example.com", "--runbook-url",
                     "https://wiki.example.com/runbook")
    assert absolute.returncode == 0 and absolute.stderr == ""


def test_an_installed_package_names_the_commit_it_was_built_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `pip install .` from a checkout: setup.py writes probe/COMMIT; no .git around it then
    from probe import build

    monkeypatch.setattr(build, "CHECKOUT", tmp_path / "site-packages")
    monkeypatch.setattr(build, "INSTALLED", tmp_path / "COMMIT")
    build.commit.cache_clear()
    try:
        assert build.commit() == "" and build.build_name() == build.__version__
        (tmp_path / "COMMIT").write_text("0123456789ab\n")
        build.commit.cache_clear()
        assert build.build_name() == f"{build.__version__} (commit 0123456789ab)"
    finally:
        build.commit.cache_clear()
