"""Generated artefacts: Grafana dashboards and Prometheus alert rules."""

from __future__ import annotations

from pathlib import Path

import jinja2

from probe.export import dashboard
from probe.export.rules import RULES

DASHBOARD_FILE = Path("dashboards") / "runpod-probe.json"
ALERTS_FILE = Path("alerts") / "runpod-probe.rules.yml"


def render_alerts() -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("probe", "templates"),
                             keep_trailing_newline=True, autoescape=False)
    return env.get_template("alerts.yml.j2").render(rules=RULES)


def artefacts() -> dict[Path, str]:
    return {DASHBOARD_FILE: dashboard.render(), ALERTS_FILE: render_alerts()}


def write_all(root: Path) -> list[Path]:
    written = []
    for relative, text in artefacts().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
