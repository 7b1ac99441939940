"""An invalid config stops every command before anything is probed (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "data" / "config"
INVALID = sorted(DATA.glob("invalid-*.yaml"))


def render(path: Path, sim: Any, state: Path) -> Path:
    out = state / path.name
    out.write_text(path.read_text().replace("SIM", sim.base_url).replace("STATE", str(state)))
    return out


CASES = [(p, "once") for p in INVALID] + [
    (DATA / f"invalid-{name}.yaml", command)
    for name in ("many-problems", "env-not-set", "literal-secret")
    for command in ("run", "check-config")
    if (name, command) != ("env-not-set", "check-config")  # see the test below
] + [
    # hostile YAML: one line, no traceback, from every command (issue 20)
    (DATA / f"invalid-{name}.yaml", command)
    for name in ("deep-nesting", "duplicate-key", "name-line-break")
    for command in ("run", "check-config")
]


@pytest.mark.parametrize(("path", "command"), CASES, ids=[f"{c}-{p.stem}" for p, c in CASES])
def test_invalid_config_exits_2_and_probes_nothing(sim: Any, tmp_path: Path,
                                                   sim_env: dict[str, str], path: Path,
                                                   command: str) -> None:
    config = render(path, sim, tmp_path)
    before = len(sim.requests_seen)
    done = subprocess.run([sys.executable, "-m", "probe", command, "--config", str(config)],
                          capture_output=True, text=True, env=sim_env, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    expected = path.with_suffix(".expected").read_text().replace("SIM", sim.base_url)
    lines = done.stderr.splitlines()
    if len(expected.splitlines()) == 1:  # one problem: one line, the problem after the path
        assert lines == [f"runpod-probe: invalid config {config}: {expected.strip()}"]
    else:
        assert lines[0] == f"runpod-probe: invalid config {config}:"
        assert [line.strip() for line in lines[1:]] == expected.splitlines()
    assert len(sim.requests_seen) == before, "an invalid config must not probe anything"
    assert not (tmp_path / "probe.db").exists()


def test_check_config_of_a_file_needs_no_secret_and_warns_of_an_unset_one(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """Checking a file sends nothing (issue 24): the service is given the key, the shell
    checking its file need not have it. The problem is said, as a warning; `run` and `once`
    still refuse to start without it (the cases above)."""
    path = DATA / "invalid-env-not-set.yaml"
    config = render(path, sim, tmp_path)
    before = len(sim.requests_seen)
    done = subprocess.run([sys.executable, "-m", "probe", "check-config", "--config",
                           str(config)], capture_output=True, text=True, env=sim_env,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{config}: ok (1 endpoints)")
    assert done.stderr.splitlines() == [
        f"runpod-probe: warning: {path.with_suffix('.expected').read_text().strip()} here (the "
        "service must be given it: README, Install on a VM)"]
    assert len(sim.requests_seen) == before


def test_valid_config_passes_check_config(sim: Any, tmp_path: Path,
                                          sim_env: dict[str, str]) -> None:
    from simconfig import header, pods, write

    config = write(tmp_path / "ok.yaml", header(sim, tmp_path) + pods("q qwen-healthy"))
    done = subprocess.run([sys.executable, "-m", "probe", "check-config", "--config",
                           str(config)], capture_output=True, text=True, env=sim_env, timeout=30)
    assert done.returncode == 0 and "ok (1 endpoints)" in done.stdout
