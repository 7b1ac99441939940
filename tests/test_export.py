"""Generated dashboards/ and alerts/: no drift from the code, valid for the real tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import tool

from probe.export import ALERTS_FILE, DASHBOARD_FILE, artefacts
from probe.export.rules import RULES, uncovered
from probe.outcome import Outcome

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("relative", list(artefacts()), ids=lambda p: p.name)
def test_committed_files_match_the_generator(relative: Path) -> None:
    committed = (ROOT / relative).read_text()
    assert committed == artefacts()[relative], f"run `runpod-probe generate` ({relative})"


def test_every_failing_outcome_has_an_alert() -> None:
    assert uncovered() == {Outcome.OK, Outcome.SKIPPED_BUDGET, Outcome.ERROR}
    assert len({rule.name for rule in RULES}) == len(RULES)


def test_dashboard_panels_are_laid_out_without_overlap() -> None:
    panels = json.loads(artefacts()[DASHBOARD_FILE])["panels"]
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, panel["title"]
        cells |= area
    assert len({p["id"] for p in panels}) == len(panels)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    exprs = [t["expr"].replace("$__rate_interval", "5m").replace("$endpoint", ".*")
             for p in json.loads(artefacts()[DASHBOARD_FILE])["panels"] for t in p.get("targets", [])]
    rules = tmp_path / "dashboard.rules.yml"
    rules.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:q{i}\n        expr: {json.dumps(e)}\n"
        for i, e in enumerate(exprs)))
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(ROOT / ALERTS_FILE)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", str(ROOT / "alerts" / "runpod-probe.test.yml")],
                          capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
