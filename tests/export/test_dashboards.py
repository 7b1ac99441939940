"""The generated dashboards: laid out, described, coloured, linked from every alert."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import tool

from probe.export.dashboards import DASHBOARDS_DIR
from probe.export.files import ALERTS_FILE, artefacts

ROOT = Path(__file__).parents[2]
BOARDS = {json.loads(text)["uid"]: json.loads(text) for path, text in artefacts().items()
          if path.parent == DASHBOARDS_DIR}
STATEFUL = ("stat", "state-timeline", "bargauge")


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def every_panel() -> list[tuple[str, dict[str, Any]]]:
    return [(uid, p) for uid, board in BOARDS.items() for p in panels(board)]


def test_two_dashboards_fleet_and_endpoint() -> None:
    assert set(BOARDS) == {"runpod-probe-fleet", "runpod-probe-endpoint"}


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_panels_are_laid_out_without_overlap_and_ids_are_unique(uid: str) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in BOARDS[uid]["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, panel["title"]
        cells |= area
    ids = [p["id"] for p in BOARDS[uid]["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_variables_datasource_job_instance_kind_endpoint(uid: str) -> None:
    variables = {v["name"]: v for v in BOARDS[uid]["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance", "kind", "endpoint"]
    # one probe of an HA pair at a time: never "All", so no panel sums both probes' views
    assert not variables["instance"].get("includeAll") and not variables["instance"].get(
        "multi")
    assert variables["datasource"]["query"] == "prometheus"
    assert "$kind" in variables["endpoint"]["query"]
    assert "allValue" not in variables["endpoint"]  # All = the listed endpoints of the kinds


def test_every_panel_has_a_description_a_unit_and_the_datasource_variable() -> None:
    for uid, panel in every_panel():
        where = f"{uid}: {panel['title']}"
        assert panel.get("description"), where
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        assert panel["datasource"]["uid"] == "${datasource}", where
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", where


def test_stat_and_state_panels_have_thresholds_and_mappings_and_down_is_red() -> None:
    for uid, panel in every_panel():
        if panel["type"] not in STATEFUL:
            continue
        defaults = panel["fieldConfig"]["defaults"]
        assert "mappings" in defaults and defaults["thresholds"]["steps"], panel["title"]
        assert defaults["color"]["mode"] == "thresholds", panel["title"]
        options = defaults["mappings"][0]["options"] if defaults["mappings"] else {}
        texts = {o["text"]: o["color"] for o in options.values()}
        for bad in ("DOWN", "FAIL", "BROKEN", "REFUSED"):
            if bad in texts:
                assert texts[bad] == "red", (uid, panel["title"])
        if "UP" in texts or "PASS" in texts:
            assert defaults["thresholds"]["steps"][0]["color"] == "red", panel["title"]


def test_every_alert_links_to_an_existing_panel_and_runbook_section() -> None:
    rules = yaml.safe_load((ROOT / ALERTS_FILE).read_text())
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in (r for g in rules["groups"] for r in g["rules"] if "alert" in r):
        url = rule["annotations"]["dashboard_url"]
        found = re.fullmatch(r"/d/([\w-]+)/[\w-]+\?viewPanel=(\d+)(&var-endpoint=.*)?", url)
        assert found, url
        uid, pid = found.group(1), int(found.group(2))
        assert pid in {p["id"] for p in panels(BOARDS[uid])}, (rule["alert"], url)
        assert (found.group(3) is not None) == (uid == "runpod-probe-endpoint"), url
        section = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert section in anchors, (rule["alert"], section)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    exprs = [t["expr"].replace("$__rate_interval", "5m").replace("$endpoint", ".*")
             for _, p in every_panel() for t in p["targets"]]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    done = subprocess.run([tool("promtool"), "check", "rules", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_probe_series_is_one_probes_view() -> None:
    """Each runpod-probe series a panel reads is narrowed to the chosen probe (``$instance``):
    an HA pair's two probes are never summed or counted twice. The recorded SLO series are
    per endpoint already (the probes' quorum)."""
    for uid, panel in every_panel():
        for target in panel["targets"]:
            for name, selector in re.findall(r"\b((?:runpod_probe|process)_\w+)(\{[^}]*\})?",
                                             target["expr"]):
                assert 'instance=~"$instance"' in selector, (uid, panel["title"], name)
