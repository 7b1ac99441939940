"""Fleet incidents and the probe's own vantage as a feature: the ``incidents:`` and
``vantage:`` sections, the start-up hook that checks the vantage before the first probe and
then on its own schedule, the incident tracker fed with verdict changes, their series and
the status page's section (open incidents, and the history from the ledger)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.config.model import Config, ConfigExtension
from probe.features import Attachment, Feature, Host
from probe.incidents.metrics import IncidentMetrics
from probe.incidents.settings import (
    IncidentSettings,
    VantageSettings,
    parse_incidents,
    parse_vantage,
)
from probe.incidents.tracker import IncidentTracker
from probe.incidents.vantage import Vantage, targets
from probe.job import Job
from probe.outcome import ProbeResult
from probe.verdict import INCIDENT_EVENTS, EndpointVerdict, Event, Transition

log = logging.getLogger(__name__)
HISTORY_ENTRIES = 20


def history(path: Path, limit: int = HISTORY_ENTRIES) -> list[dict[str, Any]]:
    """The last incident entries of the ledger, newest first (read-only, its own
    connection: called in the listener's thread)."""
    if not path.is_file():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ledger'").fetchone():
            return []
        rows = conn.execute(
            "SELECT id, ts, event, endpoint, outcome, pattern FROM ledger WHERE event IN (?, ?) "
            "ORDER BY id DESC LIMIT ?",
            (str(Event.INCIDENT_OPENED), str(Event.INCIDENT_CLOSED), limit)).fetchall()
    finally:
        conn.close()
    return [{"ledger_id": r[0], "ts": r[1], "event": r[2], "scope": r[3], "cause": r[4],
             "pattern": r[5]} for r in rows]


async def start_incidents(host: Host) -> Attachment:
    config = host.config
    settings = VantageSettings.of(config)
    vantage = Vantage(settings, targets(config, settings, host.env), host.client)
    await vantage.check()  # before the first probe: a probe cut off from the start is known
    tracker = IncidentTracker(IncidentSettings.of(config), host.announce, host.verdict)
    task = asyncio.create_task(vantage.run())

    def judged(result: ProbeResult, _row: int | None, transitions: list[Transition],
               verdict: EndpointVerdict | None) -> None:
        if transitions:  # entering or leaving "down" is always a transition
            tracker.update(result.endpoint, verdict, result.started_at)

    def changed(endpoint: str, transitions: list[Transition],
                verdict: EndpointVerdict | None) -> None:
        if transitions and transitions[0].event not in INCIDENT_EVENTS:
            tracker.update(endpoint, verdict, transitions[-1].at)

    def on_plan(config: Config, _jobs: Sequence[Job]) -> None:
        tracker.settings = IncidentSettings.of(config)
        fresh = VantageSettings.of(config)
        vantage.settings, vantage.targets = fresh, targets(config, fresh, host.env)
        tracker.plan(config)

    def status() -> dict[str, Any]:
        failing = tracker.failing_now()
        return {
            "offline": vantage.offline,
            "vantage": dict(vantage.up),
            "open": [{"id": i.id, "scope": i.scope, "cause": i.cause,
                      "opened_at": i.opened_at.isoformat(timespec="seconds"),
                      "affected": i.affected, "failing_now": failing.get(i.id, 0),
                      "group_size": i.group_size, "evidence": list(i.evidence)}
                     for i in tracker.open_incidents()],
            "history": history(host.config.storage.path),
        }

    def close() -> None:
        task.cancel()
        vantage.stop()

    return Attachment(close=close, on_plan=on_plan,
                      collectors=(IncidentMetrics(tracker, vantage),),
                      judged=(judged,), changed=(changed,), gates=(vantage.gate,),
                      status_parts={"incidents": status})


FEATURE = Feature(
    name="incidents",
    config=ConfigExtension(sections={"incidents": parse_incidents, "vantage": parse_vantage}),
    startup=(start_incidents,),
)
