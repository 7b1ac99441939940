"""The incident tracker on verdicts (unit level): one incident per group outage, whatever
the fleet's size, opened and closed once; the endpoints' verdicts cite it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import config_of, endpoint

from probe.config.model import Hysteresis
from probe.incidents.scopes import scope_of
from probe.incidents.settings import IncidentSettings
from probe.incidents.tracker import IncidentTracker, parse_id
from probe.outcome import Outcome, ProbeResult
from probe.verdict import EndpointVerdict, Event, FleetIncident, State, Transition

T0 = datetime(2026, 12, 1, tzinfo=UTC)
ONCE = Hysteresis(down_after=1, up_after=1)


def pod(i: int, host: str = "proxy.runpod.net") -> object:
    return endpoint(name=f"pod-{i:05d}", pod_id=f"p{i:05d}",
                    root_url=f"https://p{i:05d}-8000.{host}", interval_s=30.0)


def result(name: str, outcome: Outcome, at: datetime) -> ProbeResult:
    return ProbeResult(name, "pod", "models", outcome, at, 0.1, 1, "https://x")


class Fleet:
    def __init__(self, endpoints: list[object]) -> None:
        self.config = config_of(*endpoints)  # type: ignore[arg-type]
        self.verdicts = {e.name: EndpointVerdict() for e in self.config.endpoints}
        self.told: list[tuple[str, list[Transition]]] = []
        self.tracker = IncidentTracker(IncidentSettings(), lambda s, t: self.told.append((s, t)),
                                       self.verdicts.get)
        self.tracker.plan(self.config, T0)

    def observe(self, name: str, outcome: Outcome, at: datetime) -> None:
        verdict = self.verdicts[name]
        transitions = verdict.observe(result(name, outcome, at), None, ONCE)
        if transitions:
            self.tracker.update(name, verdict, at)

    def events(self) -> list[str]:
        return [str(t.event) for _, ts in self.told for t in ts]


def test_scopes_group_pods_by_proxy_host() -> None:
    assert scope_of(pod(1)) == "proxy:proxy.runpod.net"  # type: ignore[arg-type]
    assert scope_of(endpoint(kind="openai", openai_base="https://api.example.com/v1")) == \
        "provider:api.example.com"


def test_a_10000_pod_outage_is_one_incident() -> None:
    fleet = Fleet([pod(i) for i in range(10_000)])
    for i in range(10_000):
        fleet.observe(f"pod-{i:05d}", Outcome.OK, T0)
    at = T0 + timedelta(seconds=60)
    for i in range(10_000):
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_404, at + timedelta(milliseconds=i))
    assert fleet.events() == ["incident_opened"]
    scope, (opened,) = fleet.told[0]
    assert scope == "proxy:proxy.runpod.net"
    incident = opened.new
    assert isinstance(incident, FleetIncident)
    assert incident.cause == "http_404" and incident.affected == 5_000  # opened at half
    assert len(incident.evidence) == 20
    assert len(fleet.tracker.members()) == 10_000
    assert {v.incident for v in fleet.verdicts.values()} == {incident.id}
    assert parse_id(incident.id) == (scope, "http_404", incident.opened_at)
    back = at + timedelta(minutes=5)
    for i in range(10_000):
        fleet.observe(f"pod-{i:05d}", Outcome.OK, back)
    assert fleet.events() == ["incident_opened", "incident_closed"]
    closed = fleet.told[1][1][0].old
    assert isinstance(closed, FleetIncident)
    assert closed.affected == 10_000 and closed.duration_s == pytest.approx(300, abs=11)
    assert fleet.tracker.members() == [] and fleet.tracker.open_incidents() == []


def test_failures_spread_over_time_or_few_are_no_incident() -> None:
    fleet = Fleet([pod(i) for i in range(6)])
    for i in range(6):
        fleet.observe(f"pod-{i:05d}", Outcome.OK, T0)
    for i in range(6):  # one every two minutes: not "together" (window: 2 x 30 s)
        fleet.observe(f"pod-{i:05d}", Outcome.TIMEOUT, T0 + timedelta(minutes=2 * i + 1))
    assert fleet.events() == []
    two = Fleet([pod(i) for i in range(2)])
    for i in range(2):
        two.observe(f"pod-{i:05d}", Outcome.HTTP_502, T0)
    assert two.events() == []  # fewer than min_endpoints


def test_different_causes_are_different_groups_and_fleet_needs_spread() -> None:
    endpoints = [pod(i) for i in range(4)] + [pod(i, "other.proxy") for i in range(4, 8)]
    fleet = Fleet(endpoints)
    for i in range(8):
        fleet.observe(f"pod-{i:05d}", Outcome.OK, T0)
    at = T0 + timedelta(minutes=1)
    for i in range(4):  # one proxy's pods: that proxy's incident, not the fleet's
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_404, at)
    assert [s for s, _ in fleet.told] == ["proxy:proxy.runpod.net"]
    for i in range(4, 8):  # the other proxy too: its own incident, still not the fleet's
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_404, at)
    assert [s for s, _ in fleet.told] == ["proxy:proxy.runpod.net", "proxy:other.proxy"]


def test_a_restart_resumes_the_incident_from_the_verdicts() -> None:
    fleet = Fleet([pod(i) for i in range(4)])
    for i in range(4):
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_404, T0)
    assert fleet.events() == ["incident_opened"]
    saved = {n: EndpointVerdict.from_json(v.to_json()) for n, v in fleet.verdicts.items()}
    told: list[tuple[str, list[Transition]]] = []
    again = IncidentTracker(IncidentSettings(), lambda s, t: told.append((s, t)), saved.get)
    again.plan(fleet.config, T0 + timedelta(minutes=10))
    assert told == []  # resumed, not opened twice
    (incident,) = again.open_incidents()
    assert incident.id == saved["pod-00000"].incident
    assert all(v.state is State.DOWN for v in saved.values())


def test_maintenance_takes_endpoints_out_of_the_count() -> None:
    fleet = Fleet([pod(i) for i in range(3)])
    for i in range(3):
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_502, T0)
    assert fleet.events() == ["incident_opened"]
    verdict = fleet.verdicts["pod-00000"]
    from probe.verdict import Window
    verdict.enter_maintenance("pod-00000", Window("k", "w", "r", "config", T0, None), T0)
    fleet.tracker.update("pod-00000", verdict, T0 + timedelta(seconds=1))
    assert fleet.events() == ["incident_opened", "incident_closed"]
    assert Event.INCIDENT_CLOSED in [t.event for _, ts in fleet.told for t in ts]


def test_a_new_plan_closes_an_incident_that_no_longer_holds() -> None:
    fleet = Fleet([pod(i) for i in range(4)])
    for i in range(4):
        fleet.observe(f"pod-{i:05d}", Outcome.HTTP_404, T0)
    assert fleet.events() == ["incident_opened"]
    for i in range(2):  # recovered while the plan changes: fewer than 3 are left down
        fleet.verdicts[f"pod-{i:05d}"] = EndpointVerdict()
    fleet.tracker.plan(fleet.config, T0 + timedelta(minutes=3))
    assert fleet.events() == ["incident_opened", "incident_closed"]
    assert fleet.tracker.open_incidents() == [] and fleet.tracker.members() == []
    fleet.tracker.plan(fleet.config, T0 + timedelta(minutes=4))  # nothing more to say
    assert fleet.events() == ["incident_opened", "incident_closed"]
