"""Placeholder while the typed dashboards are built."""
from __future__ import annotations

from pathlib import Path

from probe.export import dashboard
from probe.export.slo import SloSettings


def render_all(slo: SloSettings) -> dict[Path, str]:
    return {Path("dashboards") / "runpod-probe.json": dashboard.render()}
