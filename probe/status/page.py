"""The status page's document: every endpoint's state from the daemon's snapshot (the same
verdict /metrics shows), a page of them with their checks, uptime and recent latency, and
the ledger's last entries. ``/status.json`` is this document; ``/`` renders it as HTML.

Cost: the fleet is summarised (counts by state) and sorted from the endpoints' views (no
check's counters are copied); only
the endpoints on the requested page (``PAGE_SIZE``) touch the database, each through an
index (uptime: the hourly table's primary key; sparklines: the results index on endpoint,
check and id).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe import __version__
from probe.build import commit
from probe.config.model import Shard
from probe.outcome import ProbeResult
from probe.state import EndpointView, Row
from probe.status.peers import PeerWatch, peer_columns
from probe.status.uptime import UptimeBook, ratio
from probe.verdict import State

PAGE_SIZE = 100
SPARK_POINTS = 30
MAX_QUERY_TEXT = 100
# Worst first: what needs a person comes to the top of the page.
ORDER = {State.DOWN: 0, State.DEGRADED: 1, State.UNKNOWN: 2, State.MAINTENANCE: 3,
         State.UP: 4}
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Query:
    page: int = 1
    state: State | None = None
    text: str | None = None

    @classmethod
    def of(cls, params: Mapping[str, list[str]]) -> Query:
        """From the URL's parameters; anything malformed falls back to the default."""
        page = params.get("page", ["1"])[0]
        state = params.get("state", [""])[0]
        text = params.get("q", [""])[0].strip()[:MAX_QUERY_TEXT]
        return cls(int(page) if page.isdigit() and int(page) > 0 else 1,
                   State(state) if state in set(State) else None, text or None)


# The named endpoints' views with their checks' latest results, each read as one.
Rows = Callable[[Sequence[str]], Mapping[str, Row]]


def document(endpoints: Mapping[str, EndpointView], rows: Rows, query: Query,
             uptime: UptimeBook, results_db: Path,
             parts: Mapping[str, Callable[[], dict[str, Any]]],
             now: datetime | None = None, shard: Shard | None = None,
             instance: str | None = None, peers: PeerWatch | None = None) -> dict[str, Any]:
    """``endpoints``: every endpoint's view (the state's, by name), for the counts and the
    order; ``rows``: the page's endpoints read again, each view with its checks' latest
    results (a row's state always matches its own checks, though a result may have moved
    it since ``endpoints`` was read); ``shard``: this daemon's share of
    the fleet (None: all of it); ``instance``: this probe's name; ``peers``: the other
    probes' last answers (None: no ``peers:``), shown per endpoint of the page."""
    now = now or datetime.now(UTC)
    views = {name: v for name, v in endpoints.items() if v.kind is not None}
    summary = {str(s): 0 for s in State}
    for view in views.values():
        summary[str(view.state)] += 1
    chosen = [(name, v) for name, v in views.items()
              if (query.state is None or v.state is query.state)
              and (query.text is None or query.text.lower() in name.lower())]
    chosen.sort(key=lambda item: (ORDER[item[1].state], item[0]))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    number = min(query.page, pages)
    shown = chosen[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
    names = [name for name, _ in shown]
    fresh = rows(names)
    shown = [(name, fresh[name][0] if name in fresh else view) for name, view in shown]
    seconds = uptime.seconds(names, now)
    sparks = sparklines(results_db, shown)
    asked = peers.views() if peers is not None else None
    beside = peer_columns(asked, names)
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "version": __version__,
        "shard": None if shard is None else {"index": shard.index, "count": shard.count},
        "commit": commit() or None,
        "instance": instance,
        "peers": None if asked is None else [v.summary() for v in asked],
        "summary": {"endpoints": len(views), **summary},
        "page": {"number": number, "pages": pages, "size": PAGE_SIZE, "matching": len(chosen),
                 "state": None if query.state is None else str(query.state),
                 "q": query.text},
        "endpoints": [_endpoint(name, view, fresh[name][1] if name in fresh else (),
                                seconds[name], sparks.get(name, {}), beside.get(name))
                      for name, view in shown],
        **{name: _part(part) for name, part in parts.items()},
    }


def _part(part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return part()
    except Exception as exc:  # noqa: BLE001 - one part failing leaves the rest of the page
        return {"error": type(exc).__name__}


def _endpoint(name: str, view: EndpointView, results: tuple[ProbeResult | None, ...],
              seconds: dict[str, dict[str, float]],
              sparks: dict[str, list[float]],
              peers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    checks = []
    for i, check in enumerate(view.checks):
        latest = results[i] if i < len(results) else None
        checks.append({
            "name": check,
            "outcome": str(latest.outcome) if latest else None,
            "message": latest.message if latest else "not run yet",
            "latency_s": round(latest.latency_s, 4) if latest else None,
            "at": latest.started_at.isoformat(timespec="seconds") if latest else None,
        })
    cause = view.cause
    return {
        "name": name, "kind": view.kind, "url": view.url, "state": str(view.state),
        "since": view.since,
        "cause": None if cause is None or view.state is State.UP else
        {"check": cause.check, "outcome": cause.outcome},
        "maintenance": view.window,
        # the share of the known time it was up; the time in each state beside it
        "uptime": {w: None if (r := ratio(by_state)) is None else round(r, 6)
                   for w, by_state in seconds.items()},
        "time_in_state_s": {w: {state: round(s, 1) for state, s in by_state.items()}
                            for w, by_state in seconds.items()},
        "checks": checks,
        "latency_s": sparks.get("latency_s", []),
        # None: no governed prompt runs here
        "ttft_s": sparks.get("ttft_s", []) if view.answers else None,
        # the peers' verdicts beside ours (None: no peers: configured)
        "peers": peers,
    }


def sparklines(path: Path, shown: Sequence[tuple[str, EndpointView]]) -> dict[str, dict[
        str, list[float]]]:
    """The last latencies of each endpoint's first check, and the last TTFTs of its first
    governed prompt, oldest first."""
    if not shown or not path.is_file():
        return {}
    out: dict[str, dict[str, list[float]]] = {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
            return {}
        for name, view in shown:
            own = [c for c in view.checks if c not in view.answers]
            prompts = list(view.answers)
            spark: dict[str, list[float]] = {}
            if own:
                rows = conn.execute(
                    "SELECT latency_s FROM results WHERE endpoint = ? AND check_name = ? "
                    "ORDER BY id DESC LIMIT ?", (name, own[0], SPARK_POINTS)).fetchall()
                spark["latency_s"] = [round(float(r[0]), 4) for r in reversed(rows)
                                      if r[0] is not None]
            if prompts:
                rows = conn.execute(
                    "SELECT details FROM results WHERE endpoint = ? AND check_name = ? "
                    "ORDER BY id DESC LIMIT ?", (name, prompts[0], SPARK_POINTS)).fetchall()
                spark["ttft_s"] = [t for t in (_ttft(r[0]) for r in reversed(rows))
                                   if t is not None]
            out[name] = spark
    finally:
        conn.close()
    return out


def _ttft(details: str | None) -> float | None:
    try:
        value = json.loads(details or "{}").get("ttft_s")
    except (ValueError, AttributeError):
        return None
    return round(float(value), 4) if isinstance(value, int | float) else None
