"""Generated dashboards/ and alerts/: no drift from the code, valid for the real tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import tool

from probe.export import ALERTS_FILE, artefacts

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("relative", list(artefacts()), ids=lambda p: p.name)
def test_committed_files_match_the_generator(relative: Path) -> None:
    committed = (ROOT / relative).read_text()
    assert committed == artefacts()[relative], f"run `runpod-probe generate` ({relative})"


def test_alert_rules_pass_promtool_check() -> None:
    check = subprocess.run([tool("promtool"), "check", "rules", str(ROOT / ALERTS_FILE)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
