"""``runpod-probe generate``: write the dashboards/ and alerts/ files.

Without ``--config`` the SLOs take their defaults: that output is what the repository
ships. With it, only the config's ``slo:`` section is read (the rest of the file is not
validated here; ``runpod-probe check-config`` does that).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any, command: Any) -> None:
    p = sub.add_parser("generate", help="Write the Grafana dashboards and Prometheus rules.",
                       description="Write the Grafana dashboards and Prometheus rules.")
    p.add_argument("--out", default=".", help="directory that receives dashboards/ and alerts/")
    p.add_argument("--config", help="read SLO objectives from this config's slo: section")
    p.add_argument("--grafana-url", default="", help="Grafana's base URL for the alerts' "
                   "dashboard_url (default: a path relative to Grafana)")
    p.add_argument("--runbook-url", default="docs/runbook.md", help="where the runbook is "
                   "published, for the alerts' runbook_url (default: docs/runbook.md)")
    p.set_defaults(handler=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from probe.export import ExportOptions, write_all
    from probe.export.links import Links
    from probe.export.slo import SloSettings

    slo = SloSettings()
    if args.config:
        loaded = read_slo(Path(args.config))
        if loaded is None:
            return 2
        slo = loaded
    links = Links(grafana_url=args.grafana_url.rstrip("/"), runbook_url=args.runbook_url)
    for path in write_all(Path(args.out), ExportOptions(slo, links)):
        print(path)
    return 0


def read_slo(path: Path) -> Any:
    """The ``slo:`` section of the config at ``path``; None (problems printed) if invalid."""
    import yaml

    from probe.config.fields import Problems
    from probe.export.slo import parse_slo

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return None
    problems = Problems()
    settings = parse_slo(raw.get("slo") if isinstance(raw, dict) else None, "slo", problems)
    for line in problems.lines:
        print(f"{path}: {line}", file=sys.stderr)
    return None if problems else settings
