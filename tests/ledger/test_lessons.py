"""The lesson layer: which ledger entries are rows of LEARNING.md, and which are evidence."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from probe.ledger import rules
from probe.ledger.book import read_entries
from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.ledger.lessons import FLEET, LEDGER_TABLE, PATTERNS_TABLE, SETTLE, Hold, fold, lessons
from probe.ledger.settings import LessonFilter
from probe.verdict import Event, FleetIncident, Transition

AT = "2026-02-18T09:00:00+00:00"
BEFORE_LINK = Path(__file__).parent.parent / "data" / "ledger" / "before-incident-link.db"


def chain(*specs: tuple[str, str, str | None, str]) -> list[LedgerEntry]:
    """(endpoint, event, outcome, observed_at) each; the pattern names endpoint and event."""
    out: list[LedgerEntry] = []
    for n, (endpoint, event, outcome, at) in enumerate(specs, start=1):
        d = LedgerDraft(ts=AT, severity="info", endpoint=endpoint, event=event,
                        pattern=f"RunPod pod {endpoint} {event} {outcome}",
                        evidence=Evidence("models", outcome, n, n, "http://x", at))
        out.append(seal(d, n, out[-1].hash if out else GENESIS))
    return out


def rows(entries: list[LedgerEntry]) -> list[tuple[int, str, str]]:
    return [(lesson.cite.id, lesson.table, lesson.text) for lesson in lessons(entries)]


def test_failing_prompts_before_the_root_cause_are_its_evidence() -> None:
    """The dead engine: its prompts fail (the endpoint not up yet), then /health says engine
    dead, then a prompt passes again, then it recovers: two rows."""
    found = rows(chain(("dead", "prompt_failing", "http_5xx", AT),
                       ("dead", "prompt_failing", "http_5xx", AT),
                       ("dead", "down", "engine_dead", AT),
                       ("dead", "prompt_passing", "http_5xx", AT),
                       ("dead", "recovered", "engine_dead", AT)))
    assert [(n, table) for n, table, _ in found] == [(3, LEDGER_TABLE), (5, LEDGER_TABLE)]


def test_the_same_cause_again_is_evidence_a_new_cause_a_new_row() -> None:
    found = rows(chain(("p", "down", "http_404", AT), ("p", "down", "http_404", AT),
                       ("p", "down", "http_502", AT), ("p", "recovered", "http_502", AT),
                       ("p", "down", "http_502", AT)))
    assert [n for n, _, _ in found] == [1, 3, 4, 5]
    assert found[1][2].endswith("— now http_502 after http_404: the cause changed inside the "
                                "incident opened at ledger #1")
    assert "now" not in found[3][2], "after a recovery it is a new incident"


def test_one_plan_is_one_fleet_row_and_a_later_change_another() -> None:
    entries = chain(("a", "appeared", None, AT), ("b", "appeared", None, AT),
                    ("a", "down", "http_404", AT), ("c", "appeared", None, AT))
    found = lessons(entries)
    assert [(x.cite.id, x.covers, x.names, x.kind) for x in found] == [
        (1, (1, 2), ("a", "b"), FLEET), (3, (3, 3), (), "pod"), (4, (4, 4), ("c",), FLEET)]
    assert found[0].text == "2 endpoints added to the probed fleet: 2 pods"


def test_a_prompt_failing_soon_after_a_model_change_is_a_capability_lesson() -> None:
    found = rows(chain(("m", "model_changed", "ok", "2026-02-18T09:00:00+00:00"),
                       ("m", "degraded", "expectation_failed", "2026-02-18T09:10:00+00:00"),
                       ("m", "restored", "expectation_failed", "2026-02-18T10:00:00+00:00"),
                       ("m", "degraded", "expectation_failed", "2026-02-20T09:10:00+00:00")))
    assert [(n, table) for n, table, _ in found] == [
        (1, PATTERNS_TABLE), (2, PATTERNS_TABLE), (3, LEDGER_TABLE), (4, LEDGER_TABLE)]
    assert found[1][2].endswith("— the expected answer stopped matching 10m after the served "
                                "model changed (ledger #1)")


def test_kinds_it_does_not_know_are_one_row_each() -> None:
    """A fleet incident's entries (another feature's kinds) each get a row, of kind fleet."""
    found = lessons(chain(("proxy:x", "incident_opened", "http_502", AT),
                          ("proxy:x", "incident_closed", "http_502", AT),
                          ("q", "some_future_kind", None, AT)))
    assert [(x.cite.id, x.table, x.kind) for x in found] == [
        (1, LEDGER_TABLE, FLEET), (2, LEDGER_TABLE, FLEET), (3, LEDGER_TABLE, "pod")]


def test_a_recovery_row_says_what_ended_the_incident() -> None:
    found = rows(chain(("p", "down", "http_404", AT), ("p", "recovered", "http_404", AT),
                       ("w", "degraded", "expectation_failed", AT),
                       ("w", "restored", "expectation_failed", AT)))
    assert found[1][2] == "RunPod pod p recovered http_404 — ended by result #2: every check " \
        "passes again"
    assert found[3][2].endswith("— ended by result #4: every governed prompt passes again")


def sealed(transitions: list[tuple[Transition, str | None]]) -> list[LedgerEntry]:
    """(transition, the fleet incident its endpoint's verdict cites) each, drafted by the
    ledger's rules and chained."""
    entries: list[LedgerEntry] = []
    for n, (t, incident) in enumerate(transitions, start=1):
        who = t.endpoint if t.event in (Event.INCIDENT_OPENED, Event.INCIDENT_CLOSED) \
            else f"RunPod pod {t.endpoint} ({t.endpoint}0pod)"
        entries.append(seal(rules.draft(t, who, "pod", incident), n,
                            entries[-1].hash if entries else GENESIS))
    return entries


OPENED = datetime(2026, 2, 18, 9, tzinfo=UTC)
SCOPE = "proxy:proxy.runpod.net"


def outage(names: tuple[str, ...] = ("a", "b", "c"), cause: str = "http_502",
           recover_after: dict[str, timedelta] | None = None,
           causes: dict[str, str] | None = None) -> list[tuple[Transition, str | None]]:
    """Every pod 502 at once: the first two go down before the incident opens (their entries
    cannot cite it yet), the third opens it; all recover; the incident closes."""
    incident = FleetIncident("i-1", SCOPE, cause, OPENED + timedelta(seconds=2), len(names),
                             len(names), names)
    steps: list[tuple[Transition, str | None]] = []
    for n, name in enumerate(names):
        why = (causes or {}).get(name, cause)
        steps.append((Transition(Event.DOWN, name, OPENED + timedelta(seconds=n), "models", why,
                                 n + 1, n + 1, f"https://{name}-8000.proxy.runpod.net"),
                      "i-1" if n >= 2 else None))
        if n == 2:
            steps.append((Transition(Event.INCIDENT_OPENED, SCOPE, incident.opened_at,
                                     "incident", cause, url=SCOPE, new=incident), None))
    closed_at = OPENED + timedelta(minutes=7)
    late = recover_after or {}
    for name in names[:-2]:
        steps.append((Transition(Event.RECOVERED, name, closed_at - timedelta(seconds=1),
                                 "models", (causes or {}).get(name, cause), 9, 9,
                                 since=OPENED), "i-1"))
    steps.append((Transition(Event.INCIDENT_CLOSED, SCOPE, closed_at, "incident", cause,
                             url=SCOPE, since=incident.opened_at, until=closed_at,
                             old=replace(incident, closed_at=closed_at)), None))
    for name in names[-2:]:
        at = closed_at + late.get(name, timedelta(seconds=1))
        steps.append((Transition(Event.RECOVERED, name, at, "models",
                                 (causes or {}).get(name, cause), 9, 9, since=OPENED), "i-1"))
    return steps


def test_a_fleet_incident_is_a_row_as_it_opens_and_one_as_it_closes() -> None:
    """Every pod down at once: a row when the incident opens (its members so far), a
    recovery row when it closes (how long, what ended it); the endpoints' down and recovered
    entries (the first two written before the incident existed, linked by the opening
    entry's structured members) are its evidence, not rows; kind fleet."""
    entries = sealed(outage())
    found = lessons(entries, hold=Hold(OPENED + timedelta(hours=1)))
    assert [(x.cite.event, x.table, x.kind) for x in found] == [
        ("incident_opened", LEDGER_TABLE, FLEET), ("incident_closed", LEDGER_TABLE, FLEET)]
    opened, closed = found
    assert opened.text.startswith("Fleet incident i-1: 3 of 3 endpoints")
    assert opened.text.endswith("; their entries (#1, #2, #3) are its evidence — open; endpoints "
                                "joining it are its evidence too, not rows of their own")
    assert opened.names == ("a", "b", "c") and opened.covers == (1, 4)
    assert closed.text.startswith("Fleet incident i-1 closed after 6m58s")
    recovered = next(e for e in entries if e.event == "recovered")
    assert f"ended by 1 endpoint recovering (a; #{recovered.id}), the last at result #9; " \
        "opened at ledger #4;" in closed.text
    assert closed.names == ("a", "b", "c")
    # named in the row: the entries up to its close (the two recoveries just after it are
    # folded too, within SETTLE, but the row was written already)
    folded = [e.id for e in entries if e.endpoint in ("a", "b", "c") and e.id < closed.cite.id]
    assert f"{len(folded)} endpoint entries (" + ", ".join(f"#{n}" for n in folded) + ")" \
        in closed.text
    assert all(LessonFilter(kinds=("fleet",)).keeps(x) for x in found)
    assert not any(LessonFilter(kinds=("pod",)).keeps(x) for x in found)


def test_an_open_fleet_incident_is_in_the_rows_while_it_lasts() -> None:
    """An hour-long outage: its row is there as soon as it opens; a member that joins later
    and its persistent entry are evidence, not rows."""
    steps = [s for s in outage(names=("a", "b", "c", "d")) if s[0].event is not Event.RECOVERED
             and s[0].event is not Event.INCIDENT_CLOSED]
    joined = [t for t, _ in steps if t.endpoint == "d"]
    assert joined and joined[0].event is Event.DOWN  # d went down after it opened
    steps.append((Transition(Event.PERSISTENT, "a", OPENED + timedelta(minutes=30), "models",
                             "http_502", 30, 30), "i-1"))
    entries = sealed(steps)
    found = lessons(entries, hold=Hold(OPENED + timedelta(minutes=31)))
    assert [(x.cite.event, x.kind) for x in found] == [("incident_opened", FLEET)]


def test_text_naming_a_fleet_incident_changes_nothing() -> None:
    """An endpoint whose name (or a model id quoted in its sentence) reads "[part of fleet
    incident i-1]", without the structured link: its rows are its own."""
    hostile = "x [part of fleet incident i-1]"
    steps = outage()
    steps.insert(1, (Transition(Event.DOWN, hostile, OPENED, "models", "http_502", 7, 7),
                     None))
    entries = sealed(steps)
    assert "[part of fleet incident i-1]" in entries[1].pattern
    found = lessons(entries, hold=Hold(OPENED + timedelta(hours=1)))
    assert [(x.cite.endpoint, x.cite.event) for x in found] == [
        (hostile, "down"), (SCOPE, "incident_opened"), (SCOPE, "incident_closed")]


def test_an_endpoint_with_another_cause_or_broken_after_the_close_has_rows_of_its_own(
        ) -> None:
    entries = sealed(outage(causes={"a": "timeout"},
                            recover_after={"c": timedelta(hours=2)}))
    found = lessons(entries, hold=Hold(OPENED + timedelta(hours=3)))
    assert [(x.cite.endpoint, x.cite.event) for x in found] == [
        ("a", "down"), (SCOPE, "incident_opened"), ("a", "recovered"),
        (SCOPE, "incident_closed"), ("c", "recovered")]
    assert "ended without a recovery" in found[3].text


def test_a_member_down_again_after_the_close_has_rows_though_it_cites_the_incident() -> None:
    """A ledger written before the tracker forgot a closed incident's mark: a member down
    again within ``SETTLE`` of the close cites the closed incident; it is a new failure."""
    steps = outage()
    closed_at = OPENED + timedelta(minutes=7)
    steps += [(Transition(Event.DOWN, "a", closed_at + timedelta(seconds=20), "models",
                          "http_502", 20, 20), "i-1"),
              (Transition(Event.RECOVERED, "a", closed_at + timedelta(seconds=40), "models",
                          "http_502", 21, 21, since=closed_at), "i-1")]
    found = lessons(sealed(steps), hold=Hold(OPENED + timedelta(hours=1)))
    assert [(x.cite.endpoint, x.cite.event) for x in found] == [
        (SCOPE, "incident_opened"), (SCOPE, "incident_closed"), ("a", "down"),
        ("a", "recovered")]


def test_a_down_row_waits_for_a_fleet_incident_that_may_still_claim_it() -> None:
    """Until ``SETTLE`` has passed the first down entries may still be an incident's: their
    rows, and every later one, wait; a clock-free fold (``now`` None) does not wait."""
    entries = sealed(outage())[:2]  # a and b down, no incident yet
    assert lessons(entries, hold=Hold(OPENED + timedelta(seconds=30))) == []
    assert fold(entries, hold=Hold(OPENED + timedelta(seconds=30))).held
    later = lessons(entries, hold=Hold(OPENED + SETTLE + timedelta(seconds=2)))
    assert [(x.cite.endpoint, x.cite.event) for x in later] == [("a", "down"), ("b", "down")]
    assert [x.cite.id for x in lessons(entries)] == [1, 2]
    # an endpoint probed every second waits three seconds, not two minutes
    fast = Hold(OPENED + timedelta(seconds=5), {"a": 1.0, "b": 1.0})
    assert [x.cite.id for x in lessons(entries, fast)] == [1, 2]


def test_fleet_incident_entries_from_before_the_structured_link_keep_their_rows() -> None:
    """A ledger from today's release (tests/data/ledger, made by
    make_before_incident_link.py): its incident entries have no ``incident`` field, so
    nothing folds; each stays the row it was."""
    conn = sqlite3.connect(BEFORE_LINK)
    try:
        entries = read_entries(conn)
    finally:
        conn.close()
    assert all(e.evidence.incident is None for e in entries)
    found = lessons(entries)
    assert [x.cite.event for x in found] == ["appeared"] * 3 + ["down", "down", "down",
                                             "incident_opened", "recovered", "recovered",
                                             "recovered", "incident_closed"]
