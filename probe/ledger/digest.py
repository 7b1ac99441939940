"""``runpod-probe learning --digest 7d``: what a window of operation taught, for people
(Markdown) and scripts (JSON).

Read on demand from the database, never on the result path: per endpoint its availability
by day (availability checks only: governed prompts judge answers, not reachability; a result
that is not ``ok`` counts as failed), the incidents (the ledger's incident rows, from the
first failing result to the entry that closed them), the mean time to recover, the patterns
that hold at the end of the window, and what the probes spent (tokens of governed prompts
and round trips, serverless jobs submitted). In a fleet of more than one probe (an HA pair)
the digest names the probe whose database it read, and each incident the probe whose entry
opened it; a lone probe's digest reads as it always did.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from probe.durations import format_duration
from probe.ledger.book import read_entries
from probe.ledger.chain import LedgerEntry
from probe.ledger.learning import names_probes
from probe.ledger.lessons import PATTERN_EVENTS, IncidentTracker

# A stored row keeps its check's name, not its role: governed answers are stored under the
# names of the prompt family (``prompt:<name>``), which availability leaves out.
STORED_ANSWERS = "prompt:%"

CLOSES = ("recovered", "restored", "disappeared")


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def iso(self, moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds")


def digest(conn: sqlite3.Connection, window: Window, probes: int = 1) -> dict[str, Any]:
    """``probes``: how many probes the fleet has (more than one: the digest names them)."""
    entries = read_entries(conn)
    incidents = _incidents(conn, entries, window)
    closed = [i["duration_s"] for i in incidents if i["duration_s"] is not None]
    named: dict[str, Any] = {}
    if names_probes(entries, probes):
        named["instance"] = entries[-1].instance if entries else None
        by_id = {e.id: e.instance for e in entries}
        for incident in incidents:
            incident["instance"] = by_id.get(incident["opened_by"])
    return {
        **named,
        "window": {"from": window.start.isoformat(timespec="seconds"),
                   "until": window.end.isoformat(timespec="seconds")},
        "endpoints": _availability(conn, window),
        "incidents": incidents,
        "mttr_s": round(sum(closed) / len(closed), 3) if closed else None,
        "patterns": _patterns(entries, window),
        "spent": _spent(conn, window),
    }


def _availability(conn: sqlite3.Connection, window: Window) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = conn.execute(
        "SELECT endpoint, substr(ts, 1, 10), COUNT(*), SUM(outcome != 'ok') FROM results "
        "WHERE ts >= ? AND ts < ? AND check_name NOT LIKE ? GROUP BY endpoint, substr(ts, 1, 10) "
        "ORDER BY endpoint, 2", (window.iso(window.start), window.iso(window.end),
                                 STORED_ANSWERS))
    for endpoint, day, results, failed in rows:
        e = out.setdefault(endpoint, {"results": 0, "failed": 0, "by_day": []})
        e["results"] += results
        e["failed"] += failed
        e["by_day"].append({"day": day, "results": results, "failed": failed,
                            "availability": _share(results, failed)})
    for e in out.values():
        e["availability"] = _share(e["results"], e["failed"])
    return out


def _share(results: int, failed: int) -> float | None:
    return round(100.0 * (results - failed) / results, 3) if results else None


def _incidents(conn: sqlite3.Connection, entries: list[LedgerEntry],
               window: Window) -> list[dict[str, Any]]:
    tracker = IncidentTracker()
    open_: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for e in entries:
        opens, before = tracker.step(e)
        at = _at(e)
        if (opens or e.event in CLOSES) and e.endpoint in open_:
            incident = open_.pop(e.endpoint)
            incident["closed_at"] = at.isoformat(timespec="seconds")
            incident["closed_by"] = e.id
            began = datetime.fromisoformat(incident["opened_at"])
            incident["duration_s"] = round((at - began).total_seconds(), 3)
        if opens:
            incident = {"endpoint": e.endpoint, "cause": e.evidence.outcome,
                        "check": e.evidence.check, "opened_by": e.id,
                        "opened_at": _first_failure(conn, e).isoformat(timespec="seconds"),
                        "closed_at": None, "closed_by": None, "duration_s": None}
            open_[e.endpoint] = incident
            out.append(incident)
    begins, ends = window.start.isoformat(), window.end.isoformat()
    return [i for i in out if i["opened_at"] < ends and (i["closed_at"] is None
                                                         or i["closed_at"] >= begins)]


def _first_failure(conn: sqlite3.Connection, e: LedgerEntry) -> datetime:
    """When the incident began: its first failing result (the entry's time without one)."""
    if e.evidence.first_row is not None:
        row = conn.execute("SELECT ts FROM results WHERE id = ?",
                           (e.evidence.first_row,)).fetchone()
        if row is not None:
            return datetime.fromisoformat(row[0])
    return _at(e)


def _patterns(entries: list[LedgerEntry], window: Window) -> list[dict[str, Any]]:
    """The patterns that hold at the end of the window."""
    held: dict[tuple[str, str, str | None, str | None], LedgerEntry] = {}
    for e in entries:
        if e.event not in PATTERN_EVENTS or _at(e) >= window.end:
            continue
        key = (e.event.removesuffix("_ended"), e.endpoint, e.evidence.check, e.evidence.outcome)
        if e.event.endswith("_ended"):
            held.pop(key, None)
        else:
            held[key] = e
    return [{"kind": e.event, "endpoint": e.endpoint, "since": e.evidence.observed_at,
             "ledger": e.id, "pattern": e.pattern} for e in held.values()]


def _spent(conn: sqlite3.Connection, window: Window) -> dict[str, int]:
    prompt, completion, jobs = conn.execute(
        "SELECT COALESCE(SUM(json_extract(details, '$.usage.prompt_tokens')), 0), "
        "COALESCE(SUM(json_extract(details, '$.usage.completion_tokens')), 0), "
        "COUNT(json_extract(details, '$.job_id')) FROM results WHERE ts >= ? AND ts < ? "
        "AND json_valid(details)", (window.iso(window.start), window.iso(window.end))).fetchone()
    return {"prompt_tokens": int(prompt), "completion_tokens": int(completion),
            "tokens": int(prompt) + int(completion), "serverless_jobs": int(jobs)}


def _at(e: LedgerEntry) -> datetime:
    return datetime.fromisoformat(e.evidence.observed_at or e.ts)


def markdown(d: dict[str, Any]) -> str:
    w = d["window"]
    probe = f" of {d['instance']}" if d.get("instance") else ""
    lines = [f"# runpod-probe digest{probe}: {w['from']} – {w['until']}", "",
             "## Availability by day (availability checks)", "",
             "| Endpoint | Availability | " + " | ".join(_days(d)) + " |",
             "|---|---|" + "---|" * len(_days(d))]
    for name, e in sorted(d["endpoints"].items()):
        by_day = {x["day"]: x["availability"] for x in e["by_day"]}
        cells = [_pct(by_day.get(day)) for day in _days(d)]
        lines.append(f"| {_cell(name)} | {_pct(e['availability'])} ({e['failed']} of "
                     f"{e['results']} failed) | " + " | ".join(cells) + " |")
    lines += ["", f"## Incidents ({len(d['incidents'])}; mean time to recover "
                  f"{format_duration(d['mttr_s']) if d['mttr_s'] is not None else 'n/a'})", ""]
    if d["incidents"]:
        named = "instance" in d
        lines += ["| Endpoint | Cause | Began | Lasted | Ledger |" + (" Probe |" if named else ""),
                  "|---|---|---|---|---|" + ("---|" if named else "")]
        for i in d["incidents"]:
            lasted = format_duration(i["duration_s"]) if i["duration_s"] is not None \
                else "still open"
            closed = f"–#{i['closed_by']}" if i["closed_by"] else ""
            probe_cell = f" {_cell(i.get('instance') or '–')} |" if named else ""
            lines.append(f"| {_cell(i['endpoint'])} | {i['cause']} ({i['check']}) | "
                         f"{i['opened_at']} | {lasted} | #{i['opened_by']}{closed} |"
                         + probe_cell)
    else:
        lines.append("No incidents.")
    lines += ["", f"## Patterns that hold ({len(d['patterns'])})", ""]
    lines += [f"- {_cell(p['pattern'])} (ledger #{p['ledger']})" for p in d["patterns"]] \
        or ["None."]
    s = d["spent"]
    lines += ["", "## What the probes spent", "",
              f"- tokens: {s['tokens']} ({s['prompt_tokens']} prompt, "
              f"{s['completion_tokens']} completion)",
              f"- serverless jobs: {s['serverless_jobs']}", ""]
    return "\n".join(lines)


def _days(d: dict[str, Any]) -> list[str]:
    return sorted({x["day"] for e in d["endpoints"].values() for x in e["by_day"]})


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def window_of(seconds: float, end: datetime) -> Window:
    return Window(end - timedelta(seconds=seconds), end)
