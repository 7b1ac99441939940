"""The README's "Install on a VM" recipe, run as written (read from README.md itself, so the
two cannot drift) into a temporary root: its paths are moved under the root, `systemctl` is
recorded instead of run, the key is typed on stdin, and RunPod's API is the simulator's (through
RUNPOD_API_BASE_URL, the variable RunPod's SDK reads). Then `check-config` must pass in the
environment the installed unit gives the service, and `systemd-analyze verify` must accept
the unit as installed.

Then day two (issue 24): the daemon runs as the unit says, and every command of README's
Operate table runs as written, as root in a fresh shell, with no flag or export added. What
maps the machine's paths to the temporary root is all the environment adds: the paths in the
commands are moved (as the recipe's), /usr/local/bin is first on PATH, and $RUNPOD_PROBE_ETC
and $STATE_DIRECTORY name the moved /etc/runpod-probe and /var/lib/runpod-probe."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import tool

from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator

REPO = Path(__file__).parents[1]
MOVED = re.compile(r"/opt/runpod-probe|/etc/runpod-probe|/etc/systemd/system|/var/lib/|"
                   r"/usr/local/bin")
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


def operate_commands() -> list[str]:
    """Every command in README's Operate table (a code span that starts with a program)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Operate\n", 1)[1].split("\n### ", 1)[0]
    spans = re.findall(r"`([^`]+)`", table)
    return [s for s in spans if s.split()[0] in PROGRAMS or s.startswith("/opt/")]


PROGRAMS = ("runpod-probe", "systemctl", "journalctl")


def stubs(root: Path) -> str:
    """systemctl and journalctl, recorded instead of run (no systemd in a test)."""
    return "".join(f'{name}() {{ printf "{name} %s\\n" "$*" >> "{root}/systemd.log"; }}\n'
                   for name in ("systemctl", "journalctl"))


def shell(script: str, root: Path, checkout: Path, env: dict[str, str],
          stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + stubs(root) + script],
                          cwd=checkout, env=env, input=stdin, capture_output=True, text=True,
                          timeout=900)


def root_shell(tmp_path: Path, root: Path, account: Simulator) -> dict[str, str]:
    """Root's login shell on the VM, moved to ``root``: nothing exported for runpod-probe."""
    return {"PATH": f"{root}/usr/local/bin:{os.environ['PATH']}", "HOME": str(tmp_path),
            "LANG": "C.UTF-8", "RUNPOD_API_BASE_URL": account.base_url + "/api",
            "RUNPOD_PROBE_ETC": str(root / "etc" / "runpod-probe"),
            "STATE_DIRECTORY": str(root / "var" / "lib" / "runpod-probe"),
            **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}}


def test_the_readme_recipe_installs_a_service_that_passes_check_config(
        tmp_path: Path, account: Simulator) -> None:
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)  # what a systemd machine has
    (root / "usr" / "local" / "bin").mkdir(parents=True)
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(
        ".git", ".ci", "build", "dist", "*.egg-info", "__pycache__", "demo-state", ".*_cache"))
    root_env = root_shell(tmp_path, root, account)
    done = shell(rooted(recipe(), root), root, checkout, root_env, stdin=KEY + "\n")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(2 endpoints from RunPod's API)" in done.stdout
    assert "ok (2 endpoints)" in done.stdout and "per day:" in done.stdout
    assert (root / "systemd.log").read_text().splitlines() == [
        "systemctl daemon-reload", "systemctl enable --now runpod-probe"]
    assert os.readlink(root / "usr" / "local" / "bin" / "runpod-probe") == \
        f"{root}/opt/runpod-probe/bin/runpod-probe"

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

    day_two(root, checkout, account, root_env, exec_start[0],
            service_environment_of(unit, root))


def service_environment_of(unit: str, root: Path) -> dict[str, str]:
    """The service's environment once more (its credentials copied again: a second start)."""
    shutil.rmtree(root / "run", ignore_errors=True)
    return service_environment(unit, root)


def day_two(root: Path, checkout: Path, account: Simulator,
            env: dict[str, str], program: str, service: dict[str, str]) -> None:
    """The operator edits the config as README says (the simulator's proxy and API, the
    pod's name as the Operate table writes it, a free port), the service starts as its unit
    says, then every Operate command runs as written."""
    config_path = root / "etc" / "runpod-probe" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["runpod"].update(proxy_url=account.proxy_template, api_base=account.api_base)
    config["endpoints"][0]["name"] = "qwen-pod"
    config["metrics"]["listen"] = f"127.0.0.1:{free_port()}"
    config_path.write_text(yaml.safe_dump(config))
    daemon = subprocess.Popen([program, "run"], env=service, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        ready(config["metrics"]["listen"], daemon)
        commands = operate_commands()
        assert len(commands) >= 12 and commands[-1].startswith("systemctl disable"), commands
        shown = {}
        for command in commands:
            done = shell(rooted(command, root), root, checkout, env)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
            assert "Traceback" not in done.stderr, command
            shown[command] = done.stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout=120)
    assert not (root / "opt" / "runpod-probe").exists(), "the uninstall ran, in the root"
    assert shown["runpod-probe status"].startswith("daemon: running")
    assert "  UP           qwen-pod" in shown["runpod-probe status"].splitlines()
    started = shown['runpod-probe maintenance start qwen-pod --for 2h --reason "moving to an H100"']
    assert started.rstrip().endswith("The running daemon applies it within 2 s.")
    assert shown["runpod-probe gate qwen-pod --timeout 10m"].startswith("ENDPOINT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(listen: str, daemon: subprocess.Popen[str]) -> None:
    """Until every endpoint is judged up on the daemon's status page."""
    for _ in range(600):
        assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
        try:
            document = httpx.get(f"http://{listen}/status.json", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            document = {}
        states = [e["state"] for e in document.get("endpoints", [])]
        if states and all(s == "up" for s in states):
            return
        time.sleep(0.1)
    raise AssertionError(f"the service never judged its fleet up: {document}")


def test_the_recipe_reads_the_key_without_echoing_it_and_names_no_secret() -> None:
    text = recipe()
    assert "read -rsp" in text, "the key is typed, not echoed or kept in shell history"
    assert "RUNPOD_API_KEY=" not in text
    assert "/opt/runpod-probe/bin/runpod-probe run" in (REPO / "systemd" / UNIT).read_text(), \
        "the unit runs the binary the recipe installs"
