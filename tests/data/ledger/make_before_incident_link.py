"""How before-incident-link.db was made: with runpod-probe as released on 2026-12-05 (before
ledger entries carried a fleet incident's link in fields of their own), three pods 502 at
once, a fleet incident opened and closed. Kept for reference; not a test. Run from a
checkout of that release:

    PYTHONPATH=. python tests/data/ledger/make_before_incident_link.py OUT.db
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probe.ledger.book import append, connect
from probe.ledger.rules import draft
from probe.storage.database import transaction
from probe.verdict import Event, FleetIncident, Transition

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
PODS = ("a", "b", "c")


def transitions() -> list[Transition]:
    incident = FleetIncident("proxy:proxy.runpod.net/http_502/2026-12-05T03:00:10Z",
                             "proxy:proxy.runpod.net", "http_502", AT + timedelta(seconds=10),
                             3, 3, PODS)
    end = AT + timedelta(minutes=5)
    out = [Transition(Event.APPEARED, n, AT, "config", url=f"https://{n}-8000.proxy.runpod.net")
           for n in PODS]
    out += [Transition(Event.DOWN, n, AT + timedelta(seconds=i), "models", "http_502", i + 1,
                       i + 4, f"https://{n}-8000.proxy.runpod.net/v1/models", "bad gateway",
                       502) for i, n in enumerate(PODS)]
    out.append(Transition(Event.INCIDENT_OPENED, incident.scope, incident.opened_at, "incident",
                          "http_502", url=incident.scope, new=incident))
    out += [Transition(Event.RECOVERED, n, end, "models", "http_502", 20 + i, 20 + i,
                       f"https://{n}-8000.proxy.runpod.net/v1/models",
                       since=AT + timedelta(seconds=i)) for i, n in enumerate(PODS)]
    out.append(Transition(Event.INCIDENT_CLOSED, incident.scope, end, "incident", "http_502",
                          url=incident.scope, since=incident.opened_at, until=end,
                          old=replace(incident, closed_at=end)))
    return out


def main(out: Path) -> None:
    conn = connect(out)
    ident = "proxy:proxy.runpod.net/http_502/2026-12-05T03:00:10Z"
    with transaction(conn):
        for i, t in enumerate(transitions()):
            fleet = t.event in (Event.INCIDENT_OPENED, Event.INCIDENT_CLOSED)
            member = t.event == Event.RECOVERED or (t.event == Event.DOWN and t.endpoint == "c")
            who = t.endpoint if fleet else f"RunPod pod {t.endpoint} ({t.endpoint}pod)"
            append(conn, [draft(t, who, "pod", ident if member else None)],
                   AT + timedelta(seconds=i))
    conn.execute("VACUUM")
    conn.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
