"""The ledger and discovery: the scope's "API key lacks pod management permissions" row,
RunPod's API as a standing subject, and endpoints that came and went through discovery."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from discovery_helpers import ENV, pod
from helpers import parse_config
from ledgerhelpers import T0, Wired, result, sync

from probe.app import PLUGINS
from probe.config import Config
from probe.discovery.fleet import build_fleet
from probe.ledger.book import LedgerBook, connect, read_entries
from probe.ledger.rules import phrase
from probe.outcome import Outcome
from probe.verdict import Event, Transition
from probe.verdict import Hysteresis as LedgerSettings

REFUSED = ("key lacks pod management permissions — GET /pods returns 403; cannot list pods "
           "programmatically")


def t(event: Event, outcome: str | None, minutes: float = 0, check: str = "discovery",
      **kw: object) -> Transition:
    return Transition(event, "runpod-api", T0 + timedelta(minutes=minutes), check, outcome,
                      since=T0 if minutes else None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("transition", "who", "sentence"),
    [
        (t(Event.DOWN, "unauthorized", message=REFUSED, http_status=403), "RunPod API",
         "RunPod API key lacks pod management permissions — GET /pods returns 403; cannot list "
         "pods programmatically"),
        (t(Event.PERSISTENT, "unauthorized", minutes=45), "RunPod API",
         "RunPod API key still lacks permission after 45m — give it read access to pods and "
         "serverless endpoints (or set another key); configured endpoints are still probed"),
        (t(Event.RECOVERED, "unauthorized", minutes=10), "RunPod API",
         "RunPod API key accepted again after 10m refused — discovery lists the fleet"),
        (t(Event.APPEARED, None), "RunPod pod qwen-p1 (p1)",
         "RunPod pod qwen-p1 (p1) discovered via the RunPod API — added to the probed fleet"),
        (t(Event.DISAPPEARED, None), "RunPod pod qwen-p1 (p1)",
         "RunPod pod qwen-p1 (p1) no longer discovered via the RunPod API (gone, not running "
         "or filtered out) — no longer probed"),
        (t(Event.APPEARED, None, check="config"), "RunPod pod mine (p9)",
         "RunPod pod mine (p9) added to the probed fleet"),
        (t(Event.DOWN, "unauthorized", check="models", http_status=401), "RunPod pod mine (p9)",
         "RunPod pod mine (p9) API key lacks permission — models returns 401"),
    ],
    ids=["refused", "still-refused", "accepted-again", "discovered", "no-longer-discovered",
         "configured-appeared", "other-checks-unchanged"],
)
def test_sentences(transition: Transition, who: str, sentence: str) -> None:
    assert phrase(transition, who)[1] == sentence


def fleet_config(tmp_path: Path, *pod_ids: str) -> Config:
    """The file (one configured pod) plus the pods discovery listed."""
    file = parse_config(f"storage: {{path: {tmp_path / 'p.db'}}}\ndiscovery: {{}}\n"
                        "endpoints:\n  - {name: mine, kind: pod, pod_id: p9}\n", env=ENV)
    listed = {"pod": tuple(pod(p, "qwen") for p in pod_ids)}
    return build_fleet(file, file.sections["discovery"], listed, ENV).config(file)


def entries(tmp_path: Path, book: LedgerBook) -> list[tuple[str, str, str]]:
    book.close()
    return [(e.endpoint, e.event, e.pattern) for e in read_entries(connect(tmp_path / "p.db"))]


def test_discovery_refused_becomes_an_entry_and_runpod_api_never_disappears(
        tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book, LedgerSettings(down_after=1), standing=PLUGINS.standing)
    ledger.state.declare_standing("runpod-api", "discovery")  # as discovery's hook does
    sync(ledger, fleet_config(tmp_path, "p1"), now=T0)
    ledger.observe(replace(result(Outcome.UNAUTHORIZED, endpoint="runpod-api",
                                  check="discovery", message=REFUSED), http_status=403), 1)
    sync(ledger, fleet_config(tmp_path), now=T0 + timedelta(minutes=5))
    assert entries(tmp_path, book) == [
        ("mine", "appeared", "RunPod pod mine (p9) added to the probed fleet"),
        ("qwen-p1", "appeared",
         "RunPod pod qwen-p1 (p1) discovered via the RunPod API — added to the probed fleet"),
        ("runpod-api", "down", "RunPod API key lacks pod management permissions — GET /pods "
                               "returns 403; cannot list pods programmatically"),
        ("qwen-p1", "disappeared",
         "RunPod pod qwen-p1 (p1) no longer discovered via the RunPod API (gone, not running "
         "or filtered out) — no longer probed"),
    ]


def test_where_an_endpoint_came_from_survives_a_restart(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    sync(Wired(book), fleet_config(tmp_path, "p1"), now=T0)
    book.close()
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    sync(Wired(book), fleet_config(tmp_path), now=T0)
    assert entries(tmp_path, book)[-1][1:] == (
        "disappeared", "RunPod pod qwen-p1 (p1) no longer discovered via the RunPod API (gone, "
                       "not running or filtered out) — no longer probed")
