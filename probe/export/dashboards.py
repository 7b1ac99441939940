"""The generated Grafana dashboards, as files."""

from __future__ import annotations

from pathlib import Path

from probe.export import endpoint_dashboard, fleet_dashboard
from probe.export.grafana import render
from probe.export.links import ENDPOINT_UID, FLEET_UID
from probe.export.slo import SloSettings

DASHBOARDS_DIR = Path("dashboards")


def render_all(slo: SloSettings) -> dict[Path, str]:
    return {DASHBOARDS_DIR / f"{FLEET_UID}.json": render(fleet_dashboard.build(slo)),
            DASHBOARDS_DIR / f"{ENDPOINT_UID}.json": render(endpoint_dashboard.build(slo))}
