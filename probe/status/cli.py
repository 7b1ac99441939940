"""``runpod-probe status``: what the running daemon says, without probing anything.

It asks the daemon's listener for ``/status.json`` (every page), the document the status page
shows, and prints the fleet's verdicts worst first, the open incidents (when the page has
that section) and the maintenance windows on now. When no daemon answers, it reads the
verdicts the daemon last kept in its database, says so, and exits 3. Nothing is sent to
any endpoint and no secret is needed."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx

from probe.commands import EXIT_CONFIG, EXIT_FAILING, EXIT_OK, listener_url, load_or_report
from probe.config.model import Config
from probe.features import CommandFactory, Plugins
from probe.secrets import plain_line
from probe.storage.verdicts import load_states
from probe.verdict import EndpointVerdict, State
from probe.windows import windows_now

EXIT_NOT_RUNNING = 3
ASK_TIMEOUT_S = 5.0
MAX_PAGES = 1000  # 100,000 endpoints: a bound on a listener that never stops paging
ORDER = {"down": 0, "degraded": 1, "unknown": 2, "maintenance": 3, "up": 4}
FINE = frozenset({"up", "maintenance"})  # what exit 0 allows (as `once`)
MESSAGE_CHARS = 100


@dataclass(slots=True)
class Fleet:
    """The verdicts as one document: ``/status.json``'s shape, every page merged."""

    source: str  # the URL asked, or the database read
    running: bool
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoints(self) -> list[dict[str, Any]]:
        return list(self.document.get("endpoints") or [])


def add_parser(sub: Any, command: CommandFactory) -> None:
    p = command("status", cmd_status, "What the running daemon says (its /status.json): "
                "verdicts worst first, open incidents, maintenance windows; probes nothing.")
    p.add_argument("--json", action="store_true", help="print the document as JSON")


def cmd_status(args: argparse.Namespace, plugins: Plugins) -> int:
    config = load_or_report(args.config, plugins.config, keys_needed=False)
    if config is None:
        return EXIT_CONFIG
    url = listener_url(config, "/status.json")
    fleet = ask(url)
    if fleet is None:
        try:
            fleet = stored(config, plugins)
        except (OSError, sqlite3.Error) as exc:
            print(f"runpod-probe status: no daemon answers at {url} and "
                  f"its database {config.storage.path} cannot be read: {exc}",
                  file=sys.stderr)
            return EXIT_NOT_RUNNING
    if args.json:
        print(json.dumps({"daemon": {"running": fleet.running, "source": fleet.source},
                          **fleet.document}, indent=1, ensure_ascii=False, default=str))
    else:
        print(render(fleet))
    if not fleet.running:
        return EXIT_NOT_RUNNING
    states = {str(e.get("state")) for e in fleet.endpoints}
    return EXIT_OK if states and states <= FINE else EXIT_FAILING


def ask(url: str) -> Fleet | None:
    """Every page of the daemon's ``/status.json``; None when no daemon answers there."""
    merged: dict[str, Any] = {}
    endpoints: list[dict[str, Any]] = []
    try:
        with httpx.Client(timeout=ASK_TIMEOUT_S, trust_env=False) as client:
            number = pages = 1
            while number <= min(pages, MAX_PAGES):
                response = client.get(url, params={"page": number})
                if response.status_code != 200:
                    return None
                document = response.json()
                if not isinstance(document, dict):
                    return None
                merged = merged or document
                endpoints.extend(document.get("endpoints") or [])
                pages = int((document.get("page") or {}).get("pages") or 1)
                number += 1
    except (httpx.HTTPError, ValueError, TypeError):
        return None
    merged["endpoints"] = endpoints
    return Fleet(url, True, merged)


def stored(config: Config, plugins: Plugins) -> Fleet:
    """The verdicts the daemon last kept in its database (read-only), with the maintenance
    windows on now."""
    path = config.storage.path
    if not path.is_file():
        raise OSError(f"{path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        saved = load_states(conn)
    finally:
        conn.close()
    # a standing pseudo-endpoint (discovery's runpod-api) is not an endpoint (as the page)
    verdicts = {name: EndpointVerdict.from_json(data) for name, data in saved.items()
                if name not in plugins.standing}
    windows = windows_now(plugins.windows, config, verdicts)
    endpoints = []
    for name, verdict in verdicts.items():
        window = windows.get(name)
        state = State.MAINTENANCE if window is not None else verdict.state
        cause = verdict.cause
        endpoints.append({
            "name": name, "state": str(state), "since": verdict.since,
            "cause": None if cause is None or state in (State.UP, State.MAINTENANCE) else
            {"check": cause.check, "outcome": cause.outcome},
            "maintenance": None if window is None else f"{window.name}: {window.reason}"})
    endpoints.sort(key=lambda e: (ORDER.get(str(e["state"]), 9), str(e["name"])))
    summary: dict[str, int] = {"endpoints": len(endpoints)}
    for name in ORDER:
        summary[name] = sum(1 for e in endpoints if e["state"] == name)
    return Fleet(str(path), False, {"summary": summary, "endpoints": endpoints})


def render(fleet: Fleet) -> str:
    lines = []
    if fleet.running:
        version = fleet.document.get("version") or "?"
        commit = fleet.document.get("commit")
        lines.append(f"daemon: running, runpod-probe {version}"
                     f"{f' ({commit})' if commit else ''}, at {fleet.source}")
    else:
        lines.append(f"daemon: NOT RUNNING (no answer from its listener); the verdicts it last "
                     f"kept in {fleet.source}:")
    summary = fleet.document.get("summary") or {}
    counts = [f"{summary[s]} {s}" for s in ORDER if summary.get(s)]
    lines.append(f"{summary.get('endpoints', len(fleet.endpoints))} endpoints"
                 f"{': ' + ', '.join(counts) if counts else ''}")
    rows = sorted(fleet.endpoints, key=lambda e: (ORDER.get(str(e.get("state")), 9),
                                                  str(e.get("name"))))
    width = max((len(plain_line(str(e.get("name")))) for e in rows), default=0)
    for e in rows:
        lines.append(f"  {str(e.get('state')).upper():<11}  "
                     f"{plain_line(str(e.get('name'))):<{width}}  {_why(e)}".rstrip())
    section = fleet.document.get("incidents")
    if isinstance(section, dict) and section.get("offline"):
        lines.append("the probe itself is OFFLINE (its own vantage checks fail): the verdicts "
                     "may say more about this machine than about the fleet")
    incidents = _open_incidents(section)
    if incidents is not None:
        lines.append(f"open incidents: {len(incidents) or 'none'}")
        lines.extend(f"  {_incident(i)}" for i in incidents)
    windows = [e for e in rows if e.get("maintenance")]
    lines.append(f"maintenance windows on now: {len(windows) or 'none'}")
    lines.extend(f"  {plain_line(str(e.get('name')))}: {plain_line(str(e['maintenance']))}"
                 for e in windows)
    return "\n".join(lines)


def _why(endpoint: dict[str, Any]) -> str:
    parts = []
    if endpoint.get("state") == "maintenance" and endpoint.get("maintenance"):
        parts.append(str(endpoint["maintenance"]))
    cause = endpoint.get("cause")
    if isinstance(cause, dict):
        parts.append(f"{cause.get('check')}: {cause.get('outcome')}")
    if endpoint.get("since") and endpoint.get("state") != "up":
        parts.append(f"since {endpoint['since']}")
    return plain_line(", ".join(parts))


def _open_incidents(section: Any) -> list[Any] | None:
    """The incidents section of ``/status.json`` when the daemon has one: a list, or a
    document holding one (``open``, ``incidents``)."""
    if section is None:
        return None
    if isinstance(section, dict):
        for key in ("open", "incidents", "items"):
            if isinstance(section.get(key), list):
                return list(section[key])
        return []
    return list(section) if isinstance(section, list) else None


def _incident(incident: Any) -> str:
    """One open incident in a line: where (its scope), why (its cause), since when, how
    many endpoints it holds (the incidents section's fields; others as they come)."""
    if not isinstance(incident, dict):
        return plain_line(str(incident))[:MESSAGE_CHARS]
    parts = [str(incident[k]) for k in ("scope", "cause") if incident.get(k)]
    affected = incident.get("affected")
    if isinstance(affected, list | tuple):
        parts.append(f"{len(affected)} endpoints" + (f" ({', '.join(map(str, affected[:3]))}"
                                                     f"{', …' if len(affected) > 3 else ''})"
                                                     if affected else ""))
    elif affected is not None:
        parts.append(f"{affected} endpoints")
    if incident.get("failing_now") is not None:
        parts.append(f"{incident['failing_now']} failing now")
    for key in ("opened_at", "since", "started_at"):
        if incident.get(key):
            parts.append(f"since {incident[key]}")
            break
    text = ", ".join(parts) or json.dumps(incident, default=str)
    return plain_line(text)[:MESSAGE_CHARS * 2]
