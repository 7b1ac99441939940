"""The README's "Install on a VM" recipe, run as written (read from README.md itself, so the
two cannot drift) into a temporary root: its paths are moved under the root, `systemctl` is
recorded instead of run, the key is typed on stdin, and RunPod's API is the simulator's (through
RUNPOD_API_BASE_URL, the variable RunPod's SDK reads). Then `check-config` must pass in the
environment the installed unit gives the service, and `systemd-analyze verify` must accept
the unit as installed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import tool

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator

REPO = Path(__file__).parents[1]
MOVED = re.compile(r"/opt/runpod-probe|/etc/runpod-probe|/etc/systemd/system|/var/lib/")
KEY = "rk-install-recipe-0000"
UNIT = "runpod-probe.service"


def recipe() -> str:
    """The bash block between the README's install-recipe markers."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- install-recipe")[1].split("<!-- /install-recipe -->")[0]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def rooted(text: str, root: Path) -> str:
    return MOVED.sub(lambda m: f"{root}{m.group(0)}", text)


def unit_settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "[")):
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def service_environment(unit: str, root: Path) -> dict[str, str]:
    """What systemd hands the service: Environment=, EnvironmentFile= (optional with -),
    the credentials of LoadCredential= in $CREDENTIALS_DIRECTORY, $STATE_DIRECTORY."""
    settings = unit_settings(unit)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for assignment in settings.get("Environment", []):
        name, _, value = assignment.partition("=")
        env[name] = value
    for source in settings.get("EnvironmentFile", []):
        path = Path(source.lstrip("-"))
        if path.is_file():
            env.update(line.split("=", 1) for line in path.read_text().splitlines()
                       if "=" in line and not line.startswith("#"))
        else:
            assert source.startswith("-"), f"EnvironmentFile {path} is missing"
    credentials = root / "run" / "credentials" / UNIT
    credentials.mkdir(parents=True)
    for entry in settings.get("LoadCredential", []):
        name, _, path = entry.partition(":")
        shutil.copyfile(path, credentials / name)
    env["CREDENTIALS_DIRECTORY"] = str(credentials)
    for name in settings.get("StateDirectory", []):
        state = root / "var" / "lib" / name
        state.mkdir(parents=True, exist_ok=True)
        env["STATE_DIRECTORY"] = str(state)
    return env


@pytest.fixture
def account() -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("p-run", PodSpec(name="Qwen Pod"))
    fleet.add_serverless("e-q", ServerlessSpec(name="queue"))
    with Simulator(fleet, api_key=KEY) as sim:
        yield sim


def test_the_readme_recipe_installs_a_service_that_passes_check_config(
        tmp_path: Path, account: Simulator) -> None:
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)  # what a systemd machine has
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", ".ci", "build", "dist", "*.egg-info", "__pycache__", "demo-state", ".*_cache"))
    script = ("set -euo pipefail\n"
              f'systemctl() {{ printf "%s\\n" "$*" >> "{root}/systemctl.log"; }}\n'
              + rooted(recipe(), root))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "RUNPOD_API_BASE_URL": account.base_url + "/api",
           "STATE_DIRECTORY": str(root / "var" / "lib" / "runpod-probe"),
           **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}}
    done = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, input=KEY + "\n",
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(2 endpoints from RunPod's API)" in done.stdout
    assert "ok (2 endpoints)" in done.stdout and "per day:" in done.stdout
    assert (root / "systemctl.log").read_text().splitlines() == [
        "daemon-reload", "enable --now runpod-probe"]

    etc = root / "etc" / "runpod-probe"
    key_file = etc / "credentials" / "RUNPOD_API_KEY"
    assert key_file.read_text() == KEY + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    config = yaml.safe_load((etc / "config.yaml").read_text())
    assert [e["name"] for e in config["endpoints"]] == ["qwen-pod-p-run", "queue-e-q"]
    assert KEY not in (etc / "config.yaml").read_text()

    # the service's own view: the unit as installed, its environment and credentials
    unit = rooted((root / "etc" / "systemd" / "system" / UNIT).read_text(), root)
    env = service_environment(unit, root)
    exec_start = unit_settings(unit)["ExecStart"][0].split()
    assert Path(exec_start[0]).is_file()
    checked = subprocess.run([exec_start[0], "check-config"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{etc / 'config.yaml'}: ok (2 endpoints)")

    installed = tmp_path / UNIT
    installed.write_text(unit)
    verify = subprocess.run([tool("systemd-analyze"), "verify", str(installed)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_the_recipe_reads_the_key_without_echoing_it_and_names_no_secret() -> None:
    text = recipe()
    assert "read -rsp" in text, "the key is typed, not echoed or kept in shell history"
    assert "RUNPOD_API_KEY=" not in text
    assert "/opt/runpod-probe/bin/runpod-probe run" in (REPO / "systemd" / UNIT).read_text(), \
        "the unit runs the binary the recipe installs"
