"""``runpod-probe generate``: write the dashboards/ and alerts/ files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probe.features import CommandFactory, Plugins


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = sub.add_parser("generate", help="Write the Grafana dashboard and Prometheus alert rules.",
                       description="Write the Grafana dashboard and Prometheus alert rules.")
    p.add_argument("--out", default=".", help="directory that receives dashboards/ and alerts/")
    p.set_defaults(handler=cmd_generate)


def cmd_generate(args: argparse.Namespace, plugins: Plugins) -> int:
    from probe.export import write_all

    for path in write_all(Path(args.out)):
        print(path)
    return 0
