"""The lesson layer: which ledger entries are rows of LEARNING.md, and which are evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from probe.ledger import rules
from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.ledger.lessons import FLEET, LEDGER_TABLE, PATTERNS_TABLE, lessons
from probe.ledger.settings import LessonFilter
from probe.verdict import Event, FleetIncident, Transition

AT = "2026-02-18T09:00:00+00:00"


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


def test_a_fleet_incident_is_one_row_at_open_and_one_at_close_for_fleet_targets() -> None:
    """The incidents feature's entries, phrased by the ledger's rules: a row each, kind
    fleet, kept by a target filtered to fleet lessons."""
    opened = datetime(2026, 2, 18, 9, tzinfo=UTC)
    incident = FleetIncident("i-1", "proxy:proxy.runpod.net", "http_502", opened, 12, 14,
                             ("a", "b"))
    closed = replace(incident, closed_at=opened + timedelta(minutes=7))
    transitions = [
        Transition(Event.INCIDENT_OPENED, incident.scope, opened, "incident", "http_502",
                   url=incident.scope, new=incident),
        Transition(Event.INCIDENT_CLOSED, incident.scope, opened + timedelta(minutes=7),
                   "incident", "http_502", url=incident.scope, old=closed)]
    entries: list[LedgerEntry] = []
    for n, t in enumerate(transitions, start=1):
        entries.append(seal(rules.draft(t, t.endpoint), n, entries[-1].hash if entries
                            else GENESIS))
    found = lessons(entries)
    assert [(x.cite.id, x.table, x.kind) for x in found] == [
        (1, LEDGER_TABLE, FLEET), (2, LEDGER_TABLE, FLEET)]
    assert found[0].text.startswith("Fleet incident i-1: 12 of 14 endpoints")
    assert all(LessonFilter(kinds=("fleet",)).keeps(x) for x in found)
    assert not any(LessonFilter(kinds=("pod",)).keeps(x) for x in found)
