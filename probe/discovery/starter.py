"""``runpod-probe init``: a starter config. With RunPod's key in the environment, it lists the
account's running pods and serverless endpoints (the discovery code) and names them; without
it, a commented template that turns discovery on. Either way the file passes
``check-config`` with nothing but ``RUNPOD_API_KEY`` set. An existing file is never
overwritten unless ``--force``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.commands import EXIT_CONFIG, EXIT_OK, default_config
from probe.config import ConfigError, parse_config
from probe.config.model import Config
from probe.discovery.discoverer import Discoverer, Discovery
from probe.discovery.settings import API_BASE_ENV, default_api
from probe.features import CommandFactory, Plugins
from probe.jinja import environment
from probe.net import make_client

KEY_ENV = "RUNPOD_API_KEY"


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = command("init", cmd_init, "Write a starter config: the account's pods and serverless "
                "endpoints from RunPod's API when RUNPOD_API_KEY is set, else a template.")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--api", default=None, help=f"RunPod's REST API (default "
                   f"${API_BASE_ENV}/v2 if set, else {default_api({})})")
    p.add_argument("--port", type=int, default=8000, help="the pod port to probe (default 8000)")
    p.add_argument("--state", type=Path, default=None, metavar="DIR",
                   help="where the database and LEARNING.md live (default: the daemon's "
                        "state directory, /var/lib/runpod-probe)")


def cmd_init(args: argparse.Namespace, plugins: Plugins) -> int:
    path = Path(args.config or default_config())
    if path.exists() and not args.force:
        print(f"runpod-probe init: {path} exists (--force to overwrite)", file=sys.stderr)
        return EXIT_CONFIG
    listed: Discovery | None = None
    unlisted: str | None = None  # why RunPod's API did not list the account, with a key
    if _key_present():
        listed = asyncio.run(_list(args.api or default_api(os.environ), args.port, plugins))
        if not listed.result.ok:
            unlisted = f"{listed.result.outcome}: {listed.result.message}"
            print(f"runpod-probe init: warning: RunPod's API did not list the account "
                  f"({unlisted}); writing a template with discovery on instead",
                  file=sys.stderr)
            listed = None
    text = render(path, listed, args.port, args.state, unlisted)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # what the operator must fix now
        print(f"runpod-probe init: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    found = "" if listed is None else \
        f" ({len(listed.fleet.endpoints)} endpoints from RunPod's API)"
    print(f"{path}: written{found}; check it with: runpod-probe check-config --config {path}")
    # A template is a working config (discovery lists the fleet once the API answers): an
    # unreachable or refusing API is a warning, never a failure that stops an install script.
    return EXIT_OK


def _key_present() -> bool:
    return bool(os.environ.get(KEY_ENV))


async def _list(api: str, port: int, plugins: Plugins) -> Discovery:
    """RunPod's listing through the discovery code, with a throwaway config."""
    text = f'discovery: {{api: "{api}", port: {port}}}\n'
    try:
        config: Config = parse_config(text, None, plugins.config)
    except ConfigError as exc:  # only a bad --api can do this
        raise SystemExit(f"runpod-probe init: {'; '.join(exc.problems)}") from None
    async with make_client(4) as client:
        return await Discoverer(None, config.scheduler.max_body_bytes).run(config, client)


def _scalar(value: object) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is YAML's): whatever RunPod's API
    returns stays one value."""
    return json.dumps(str(value))


def _comment(value: object) -> str:
    """Text safe inside a ``#`` comment: no line breaks or control characters."""
    return "".join(c if c.isprintable() else " " for c in str(value))


def render(path: Path, listed: Discovery | None, port: int, state: Path | None = None,
           unlisted: str | None = None) -> str:
    """``unlisted``: why RunPod's API did not list the account although a key was given."""
    template = environment(yaml=_scalar, comment=_comment).get_template(
        "starter_config.yaml.j2")
    if listed is None:
        return template.render(path=path, listed=False, port=port, state=state,
                               unlisted=unlisted)
    endpoints = listed.fleet.endpoints
    return template.render(
        path=path, listed=True, port=port, state=state,
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        pods=[e for e in endpoints if e.kind == "pod"],
        serverless=[e for e in endpoints if e.kind == "serverless"],
        skipped=listed.fleet.skipped)
