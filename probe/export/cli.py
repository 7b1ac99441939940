"""``runpod-probe generate``: write the dashboards/ and alerts/ files.

Without ``--config`` the SLOs and the HA quorum take their defaults: that output is what
the repository ships. With it, only the config's ``slo:`` and ``ha:`` sections are read (the
rest of the file is not validated here; ``runpod-probe check-config`` does that);
``--quorum`` overrides ``ha.quorum``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from probe.features import CommandFactory, Plugins


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = sub.add_parser("generate", help="Write the Grafana dashboards and Prometheus rules.",
                       description="Write the Grafana dashboards and Prometheus rules.")
    p.add_argument("--out", default=".", help="directory that receives dashboards/ and alerts/")
    # --config (every command's global option): read SLO objectives and the HA quorum from
    # its slo: and ha: sections; without it, the defaults (what the repository ships)
    p.set_defaults(reads_service_config=False)
    p.add_argument("--quorum", choices=("all", "majority", "any"), help="of several probes "
                   "(an HA pair), how many online ones must see an endpoint down (default: "
                   "the config's ha.quorum, else all)")
    p.add_argument("--grafana-url", default="", help="Grafana's base URL for the alerts' "
                   "dashboard_url (default: a path relative to Grafana)")
    p.add_argument("--runbook-url", default="docs/runbook.md", help="where the runbook is "
                   "published, for the alerts' runbook_url (default: docs/runbook.md)")
    p.set_defaults(handler=cmd_generate)


def cmd_generate(args: argparse.Namespace, plugins: Plugins) -> int:
    from probe.export.files import ExportOptions, write_all
    from probe.export.ha import HaSettings
    from probe.export.links import Links
    from probe.export.slo import SloSettings

    slo, ha = SloSettings(), HaSettings()
    if args.config:
        loaded = read_sections(Path(args.config))
        if loaded is None:
            return 2
        slo, ha = loaded
    if args.quorum:
        ha = HaSettings(quorum=args.quorum)
    links = Links(grafana_url=args.grafana_url.rstrip("/"), runbook_url=args.runbook_url)
    relative = [flag for flag, url in (("--grafana-url", links.grafana_url),
                                       ("--runbook-url", links.runbook_url))
                if not url.startswith(("http://", "https://"))]
    if relative:  # a pager cannot open a relative link: said, not silently written
        print(f"runpod-probe generate: warning: the alerts' links are relative (no "
              f"{' or '.join(relative)} given): a pager or chat cannot open them",
              file=sys.stderr)
    try:
        written = write_all(Path(args.out), ExportOptions(slo, links, ha))
    except OSError as exc:
        where = exc.filename or args.out
        print(f"runpod-probe generate: cannot write {where}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def read_sections(path: Path) -> Any:
    """The ``slo:`` and ``ha:`` sections of the config at ``path``; None (problems printed)
    if invalid. Only they are read: generating files needs none of the config's secrets."""
    from probe.config.fields import Problems
    from probe.config.yaml_input import YamlRefused, load_yaml
    from probe.export.ha import parse_ha
    from probe.export.slo import parse_slo

    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlRefused) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return None
    problems = Problems()
    raw = raw if isinstance(raw, dict) else {}
    settings = parse_slo(raw.get("slo"), "slo", problems), parse_ha(raw.get("ha"), "ha", problems)
    for line in problems.lines:
        print(f"{path}: {line}", file=sys.stderr)
    return None if problems else settings
