"""Generated dashboards/ and alerts/: no drift from the code, valid for the real tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tool

from probe.export.files import ALERTS_FILE, artefacts

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("relative", list(artefacts()), ids=lambda p: p.name)
def test_committed_files_match_the_generator(relative: Path) -> None:
    committed = (ROOT / relative).read_text()
    assert committed == artefacts()[relative], f"run `runpod-probe generate` ({relative})"


def test_alert_rules_pass_promtool_check() -> None:
    check = subprocess.run([tool("promtool"), "check", "rules", str(ROOT / ALERTS_FILE)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_daemon_loads_the_export_feature_without_its_generators() -> None:
    """The composition root (every command, the daemon's ``run`` included) imports the
    export feature's config sections and command, not the dashboards' and rules' generators
    nor the Grafana SDK they build on: those load when ``generate`` runs."""
    code = ("import sys, probe.app; print(' '.join(sorted(m for m in sys.modules if "
            "m.startswith(('grafana_foundation_sdk', 'probe.export')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.split()
    assert "probe.export.plugin" in loaded
    generators = {"probe.export.files", "probe.export.dashboards", "probe.export.alerting",
                  "probe.export.recording", "probe.export.grafana"}
    assert not generators & set(loaded)
    assert not [m for m in loaded if m.startswith("grafana_foundation_sdk")]
