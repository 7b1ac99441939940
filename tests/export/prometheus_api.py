"""What the shipped rules and dashboards ask a real Prometheus: its HTTP API, every
dashboard target (its variables filled in) and every recording rule."""

from __future__ import annotations

import json
from typing import Any

import httpx
import yaml

from probe.export.dashboards import DASHBOARDS_DIR
from probe.export.files import artefacts

Record = tuple[str, str | None, str]  # name, its slo label (if any), expression


def query(api: str, expr: str) -> dict[str, Any]:
    answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=30).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]  # type: ignore[no-any-return]


def recording_rules(rules_text: str) -> list[Record]:
    rules = yaml.safe_load(rules_text)
    return [(r["record"], r.get("labels", {}).get("slo"), r["expr"])
            for g in rules["groups"] for r in g["rules"] if "record" in r]


def dashboard_targets(variables: dict[str, str]) -> list[tuple[str, str]]:
    """(panel and target, PromQL with ``variables`` substituted) of every dashboard."""
    out = []
    for path, text in artefacts().items():
        if path.parent != DASHBOARDS_DIR:
            continue
        for panel in json.loads(text)["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name, value in variables.items():
                    expr = expr.replace(name, value)
                out.append((f"{path.stem}: {panel['title']} ({target['refId']})", expr))
    return out


def checks(rules_text: str, variables: dict[str, str]) -> list[tuple[str, str]]:
    """Every dashboard target, every recorded series and every recording rule's expression:
    each must return data from a Prometheus scraping a fleet with every kind of endpoint."""
    records = recording_rules(rules_text)
    return dashboard_targets(variables) + [
        (f"record {name} {slo or ''}", f'{name}{{slo="{slo}"}}' if slo else name)
        for name, slo, _ in records] + [(f"rule of {name} {slo or ''}", expr)
                                         for name, slo, expr in records]


def empty(api: str, targets: list[tuple[str, str]]) -> list[str]:
    """The targets that return no data now."""
    return [what for what, expr in targets if not query(api, expr)["result"]]


def has_data(api: str, targets: list[tuple[str, str]]) -> bool:
    """Whether every target returns data now (asks until the first that does not)."""
    return all(query(api, expr)["result"] for _, expr in targets)
