"""``runpod-probe discover``: list RunPod's fleet once and print what would be probed, as a
table, JSON, or ``endpoints:`` lines to paste into the config. Exit 0 when the listing
worked, 1 when it did not (unauthorized, unknown), 2 for a config error."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import yaml

from probe.commands import EXIT_CONFIG, EXIT_FAILING, EXIT_OK, load_or_report
from probe.config.model import Config, Endpoint
from probe.discovery.discoverer import Discoverer, Discovery
from probe.discovery.settings import DiscoverySettings
from probe.features import CommandFactory, Plugins
from probe.net import make_client
from probe.report import result_dict, table

COLUMNS = ("ENDPOINT", "KIND", "SOURCE", "RUNPOD ID", "STATUS", "URL")


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = command("discover", cmd_discover, "List RunPod's pods and serverless endpoints through "
                "its REST API and print what would be probed.")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON")
    shape.add_argument("--yaml", action="store_true", help="print config endpoints: lines for "
                       "the discovered endpoints")


def cmd_discover(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config)
    if config is None:
        return EXIT_CONFIG
    if DiscoverySettings.of(config) is None:
        print(f"runpod-probe: {args.config} has no discovery: section", file=sys.stderr)
        return EXIT_CONFIG
    found = asyncio.run(discover_once(config))
    if args.json:
        print(json.dumps(as_json(found), indent=2, default=str))
    elif args.yaml:
        print(as_yaml(found))
    else:
        print(as_table(found))
    if not found.result.ok:
        if args.json or args.yaml:  # the table already ends with the discovery's outcome
            print(f"runpod-probe: discovery {found.result.outcome}: {found.result.message}",
                  file=sys.stderr)
        return EXIT_FAILING
    return EXIT_OK


async def discover_once(config: Config) -> Discovery:
    async with make_client(4) as client:
        return await Discoverer(None, config.scheduler.max_body_bytes).run(config, client)


def _row(endpoint: Endpoint) -> dict[str, Any]:
    return {"name": endpoint.name, "kind": endpoint.kind,
            "source": "discovered" if endpoint.origin == "discovery" else "config",
            "runpod_id": endpoint.pod_id or endpoint.endpoint_id,
            "status": endpoint.runpod_status, "url": endpoint.display_url,
            "gpu_type": endpoint.gpu_type, "data_center": endpoint.data_center,
            "checks": list(endpoint.checks)}


def as_json(found: Discovery) -> dict[str, Any]:
    return {"discovery": result_dict(found.result),
            "endpoints": [_row(e) for e in found.config.endpoints],
            "skipped": [{"kind": s.kind, "id": s.id, "name": s.name, "reason": s.reason}
                        for s in found.fleet.skipped]}


def as_table(found: Discovery) -> str:
    rows = [[r["name"], r["kind"], r["source"], r["runpod_id"] or "-", r["status"] or "-",
             r["url"]] for r in map(_row, found.config.endpoints)]
    lines = [table(rows, COLUMNS) if rows else "nothing to probe"]
    if found.fleet.skipped:
        lines += ["", table([[s.kind, s.id, s.name, s.reason] for s in found.fleet.skipped],
                            ("SKIPPED", "RUNPOD ID", "NAME", "REASON"))]
    lines += ["", f"discovery: {found.result.outcome}: {found.result.message}"]
    return "\n".join(lines)


def as_yaml(found: Discovery) -> str:
    """``endpoints:`` items for the discovered endpoints, with discovery's defaults, so a
    pasted config probes the same thing without discovery."""
    settings = DiscoverySettings.of(found.config)
    assert settings is not None
    lines = [f"# listed by {settings.api}; configured endpoints are not repeated", "endpoints:"]
    for endpoint in found.fleet.endpoints:
        item: dict[str, Any] = {"name": endpoint.name, "kind": endpoint.kind}
        item.update({"pod_id": endpoint.pod_id, "port": endpoint.port} if endpoint.kind == "pod"
                    else {"endpoint_id": endpoint.endpoint_id})
        item.update(settings.defaults)
        flow = yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=10_000)
        lines.append(f"  - {flow.strip()}")
    return "\n".join(lines)
