"""The paging policy: one table (probe/export/rules.py POLICY), the rules' severities follow
it, docs/runbook.md shows it, and ``slo.page_causes`` moves a cause from ticket to page."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from probe.export.files import ALERTS_FILE, ExportOptions, render_rules
from probe.export.recording import availability_ignores
from probe.export.rules import (
    CAUSES,
    DEGRADED,
    DOWN,
    PAGE,
    POLICY,
    SERVES_WRONGLY,
    SEVERITY_OF_TIER,
    TICKET,
    policy_table,
    tier,
)
from probe.export.slo import SloSettings

ROOT = Path(__file__).parents[2]


def alerts(text: str) -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r]


def severities(rules: list[dict[str, object]], name: str) -> set[str]:
    return {r["labels"]["severity"] for r in rules if r["alert"] == name}  # type: ignore[index]


def test_the_runbook_shows_the_generators_table() -> None:
    assert policy_table() in (ROOT / "docs" / "runbook.md").read_text()


def test_every_alert_in_the_table_has_the_tiers_severity() -> None:
    shipped = alerts((ROOT / ALERTS_FILE).read_text())
    names = {str(r["alert"]) for r in shipped}
    listed: set[str] = set()
    for row in POLICY:
        for item in re.findall(r"Runpod[A-Za-z*]+(?: \((?:critical|warning)\))?", row.alerts):
            name, _, severity = item.partition(" (")
            matching = {n for n in names if re.fullmatch(name.replace("*", ".*"), n)}
            assert matching, item
            listed |= matching
            if name in ("RunpodEndpointDown", "RunpodEndpointDegraded") or "/" in row.alerts:
                continue  # per cause: below
            for n in matching:
                if severity:  # one severity of a split alert (the burns)
                    assert severity.rstrip(")") == SEVERITY_OF_TIER[row.tier]
                    assert severity.rstrip(")") in severities(shipped, n), (row.what, n)
                else:
                    assert severities(shipped, n) == {SEVERITY_OF_TIER[row.tier]}, (row.what, n)
    assert listed == names


def test_endpoint_alerts_page_for_down_and_ticket_for_serving_wrongly() -> None:
    shipped = alerts((ROOT / ALERTS_FILE).read_text())
    by_cause = {(r["alert"], r["labels"]["cause"]): r["labels"]["severity"]  # type: ignore[index]
                for r in shipped if "cause" in r["labels"]}  # type: ignore[operator]
    for cause in CAUSES:
        for state, name in ((DOWN, "RunpodEndpointDown"), (DEGRADED, "RunpodEndpointDegraded")):
            if state in cause.states:
                expected = "warning" if state == DEGRADED or cause.name in SERVES_WRONGLY \
                    else "critical"
                assert by_cause[(name, cause.name)] == expected, (name, cause.name)
    assert by_cause[("RunpodEndpointDown", "other")] == "critical"
    assert by_cause[("RunpodEndpointDegraded", "other")] == "warning"


def test_page_causes_make_a_ticket_cause_page_and_burn_availability() -> None:
    assert tier(DOWN, "answer_wrong") == TICKET
    assert tier(DEGRADED, "answer_wrong", ("answer_wrong",)) == PAGE
    paged = alerts(render_rules(ExportOptions(slo=SloSettings(page_causes=("model_mismatch",)))))
    severity = {(r["alert"], r["labels"]["cause"]): r["labels"]["severity"]  # type: ignore[index]
                for r in paged if "cause" in r["labels"]}  # type: ignore[operator]
    assert severity[("RunpodEndpointDown", "model_mismatch")] == "critical"
    assert severity[("RunpodEndpointDegraded", "model_mismatch")] == "critical"
    assert severity[("RunpodEndpointDown", "context_too_small")] == "warning"
    assert "model_missing" in availability_ignores(SloSettings())
    assert "model_missing" not in availability_ignores(
        SloSettings(page_causes=("model_mismatch",)))
    assert "expectation_failed" in availability_ignores(
        SloSettings(page_causes=("model_mismatch",)))
