"""The shipped rules under promtool, fed what the daemon really wrote: its /metrics recorded
over scripted scenarios of the simulated fleet (record_daemon.py, tests/data/recordings).

Each case names, at chosen minutes, every alert that fires and asserts that no other alert
does: one bad result among good ones fires nothing, a dead pod is one alert, a degraded
endpoint opens tickets and pages nobody, a daemon stop and restart changes no endpoint
alert and pages once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import record_daemon
import yaml
from promtool_cases import Expect, case, run
from recordings import RECORDINGS, input_series, load, steps, target

from probe.export import ALERTS_FILE

ROOT = record_daemon.ROOT
EXPECT = Expect(yaml.safe_load((ROOT / ALERTS_FILE).read_text()))
Fired = list[tuple[str, dict[str, str], dict[str, str]]]  # (alert, rule labels, labels)

POD_B_404 = ("RunpodEndpointDown", {"cause": "pod_gone"},
             {"endpoint": "pod-b", "check": "models", "outcome": "http_404"})


def only(at: list[int], fired: Fired) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """At each minute of ``at``: exactly ``fired``, and no other alert."""
    checks = []
    for minute in at:
        for name in EXPECT.names():
            exp = [EXPECT.alert(a, static, **labels) for a, static, labels in fired if a == name]
            checks.append((f"{minute}m", name, exp))
    return checks


def recorded(scenario: str, checks: list[tuple[str, str, list[dict[str, Any]]]]) -> dict[
        str, Any]:
    return case(f"recorded: {scenario} ({load(scenario)['description']})",
                input_series(scenario), checks)


def every_minute(scenario: str) -> list[int]:
    return list(range(steps(scenario)))


def incident_scope(scenario: str) -> dict[str, str]:
    """The scope and cause of the one incident a recording has (its proxy's port varies)."""
    found = {re.search(r'cause="([^"]+)".*scope="([^"]+)"', k).groups()  # type: ignore[union-attr]
             for k in load(scenario)["series"] if k.startswith("runpod_probe_incident{")}
    assert len(found) == 1, found
    cause, scope = found.pop()
    return {"cause": cause, "scope": scope}


CASES: dict[str, list[tuple[str, str, list[dict[str, Any]]]]] = {
    "healthy": only(every_minute("healthy"), []),
    "one_bad_result": only(every_minute("one_bad_result"), []),
    "dead_pod": only([3, 5], []) + only([8, 15, 29], [POD_B_404]) + only([31, 35, 39], []),
    "degraded": only([3], []) + only([15, 25, 34], [
        ("RunpodEndpointDegraded", {"cause": "answer_wrong"},
         {"endpoint": "pod-c", "check": "prompt:arithmetic", "outcome": "expectation_failed"}),
        ("RunpodEndpointDown", {"cause": "model_mismatch"},
         {"endpoint": "pod-a", "check": "models", "outcome": "model_missing"})]),
    # pod-b pages from minute 3 and never stops firing (not even for one evaluation, which
    # would restart its `for`); the stop (minutes 15-17) pages once, as RunpodProbeDown.
    "daemon_restart": only([3, 4, 5, 10, 14, 15, 18, 19, 20, 25, 32], [POD_B_404])
    + only([16, 17], [POD_B_404, ("RunpodProbeDown", {}, target())]),
    # (the burn starts at the guard's 20 events a check, where it flickers: checked later)
    "intermittent": only([3, 10], []) + only([30, 37, 44], [
        ("RunpodErrorBudgetBurn", {"slo": "availability", "severity": "critical"},
         {"endpoint": "pod-b"})]),
    # Fleet incidents and the probe's vantage: one page each, no endpoint alert. At 250 ms rounds the pods go down a round before the vantage check
    # (at most every 2 s) says offline: the rules still page only the probe offline.
    "proxy_outage": only([3, 6], []) + only([10, 15, 24], [
        ("RunpodFleetIncident", {}, incident_scope("proxy_outage"))]) + only([29, 34], []),
    "probe_offline": only([3, 5], []) + only([7, 15, 24], [
        ("RunpodProbeOffline", {}, {"instance": target()["instance"]})]),
    "config_reload_refused": only([1, 3], []) + only([5, 14], [
        ("RunpodProbeConfigReloadFailed", {}, target())]),
    "key_lacks_permission": only([5], []) + only([20, 39], [
        ("RunpodDiscoveryFailing", {"cause": "key_lacks_permission"},
         {"endpoint": "runpod-api", "check": "discovery"})]),
}


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_recorded_scenario(scenario: str) -> None:
    run([recorded(scenario, CASES[scenario])])


def test_every_recording_has_its_case() -> None:
    assert {p.stem for p in RECORDINGS.glob("*.json")} == set(CASES) == set(
        record_daemon.SCENARIOS)


def fired_in_recordings() -> set[str]:
    return {name for checks in CASES.values() for _, name, exp in checks if exp}


def test_the_alerts_proven_on_recorded_output() -> None:
    """The alerts a recorded scenario fires. The others are proven on synthetic series
    (test_alert_rules.py) only: the recorder cannot yet make the daemon fail its store,
    ledger, memory or scheduler, nor end a check in `error` (a bug of its own); failing
    checks and prompts, and unknown endpoints, are told by the endpoint's own alert in
    every recorded scenario (one alert per endpoint)."""
    assert fired_in_recordings() == {
        "RunpodEndpointDown", "RunpodEndpointDegraded", "RunpodProbeDown",
        "RunpodErrorBudgetBurn", "RunpodDiscoveryFailing", "RunpodFleetIncident",
        "RunpodProbeOffline", "RunpodProbeConfigReloadFailed"}


def test_the_recordings_are_what_the_daemon_writes_today() -> None:
    """A short healthy run now writes the same series as the recorded one (values aside):
    a change to the exposition or to the metrics the rules read means re-recording."""
    fresh = record_daemon.record("healthy", (record_daemon.Step("all healthy", 4),))
    assert settled(fresh) == settled(load("healthy"))


def settled(recording: dict[str, Any]) -> set[str]:
    """The series a recording has after its first scrape, but for the families there only
    while something is not ok. The first scrape is taken at once, before or after the first
    round of probes depending on the machine's load (its verdicts unknown or known), and a
    loaded machine may time a probe out."""
    return {name for name, values in recording["series"].items()
            if name.split("{")[0] not in WHILE_NOT_OK
            and any(v is not None for v in values[1:])}


WHILE_NOT_OK = {"runpod_probe_outcome", "runpod_probe_endpoint_cause",
                "runpod_probe_failures_by_outcome_total"}
