"""The shipped rules under promtool, fed what the daemon really wrote: its /metrics recorded
over scripted scenarios of the simulated fleet (record_daemon.py, tests/data/recordings).

Each case names, at chosen minutes, every alert that fires and asserts that no other alert
does: one bad result among good ones fires nothing, a dead pod is one alert, a degraded
endpoint opens tickets and pages nobody, a daemon stop and restart changes no endpoint
alert and pages once. Every alert of the rules fires in some scenario, each on its real
condition (faults.py): a full disk, a ledger edited behind its triggers, LEARNING.md gone,
a memory leak, a check that raises or hangs, no scrape target.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import record_daemon
import yaml
from promtool_cases import Expect, case, run
from recordings import RECORDINGS, input_series, load, steps, target

from probe.export.files import ALERTS_FILE

ROOT = record_daemon.ROOT
EXPECT = Expect(yaml.safe_load((ROOT / ALERTS_FILE).read_text()))
Fired = list[tuple[str, dict[str, str], dict[str, str]]]  # (alert, rule labels, labels)

POD_B_404 = ("RunpodEndpointDown", {"cause": "pod_gone"},
             {"endpoint": "pod-b", "check": "models", "outcome": "http_404"})
POD_B_BURN = ("RunpodErrorBudgetBurn", {"slo": "availability", "severity": "critical"},
              {"endpoint": "pod-b"})
CHECKS_FAIL_B = [("RunpodCheckFailing", {}, {"endpoint": "pod-b", "check_kind": kind})
                 for kind in ("api", "generation")]
GENERATION_FAILS_C = ("RunpodCheckFailing", {}, {"endpoint": "pod-c", "check_kind": "generation"})
POD_B_ERRORS = ("RunpodProbeError", {}, {"endpoint": "pod-b", "check_kind": "api"})
LEARNING_FAILS = ("RunpodLearningAppendFailing", {}, target())


def prompt_fails(endpoint: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """RunpodPromptFailing reads the gauge as scraped: the target's labels stay on it."""
    return ("RunpodPromptFailing", {}, {"endpoint": endpoint, "prompt": "arithmetic",
                                        **target()})


LEDGER_FAILS = ("RunpodLedgerWriteFailing", {}, target())


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
    # 429s from RunPod's API say nothing of the pods (probed through the proxy): a ticket.
    "api_rate_limited": only([3, 10], []) + only([20, 30, 35], [
        ("RunpodDiscoveryFailing", {"cause": "api_failing"},
         {"endpoint": "runpod-api", "check": "discovery"})]),
    # Never down (pod-b fails two requests of three: never three in a row), mostly failing:
    # its checks, then its budget. (The 502s also fail the governed prompt, which says it a
    # second time, on and off: its pass ratio is near the threshold.)
    "check_failing": only([3, 10, 14], []) + only([22, 25], [
        *CHECKS_FAIL_B, POD_B_BURN, prompt_fails("pod-b")]) + only([30], [
            *CHECKS_FAIL_B, POD_B_BURN]) + only([41, 44], [POD_B_BURN]),
    # Never degraded (two wrong answers of three: never three in a row), mostly wrong.
    "prompt_failing": only([3, 10, 15], []) + only([18], [GENERATION_FAILS_C]) + only(
        [25, 33], [GENERATION_FAILS_C, prompt_fails("pod-c")]) + only([38], [
            prompt_fails("pod-c")]) + only([41, 44], []),
    # Errors observe nothing: pod-b is unknown after three, and its alert waits 15 minutes.
    "probe_error": only([3, 8], []) + only([12, 18], [POD_B_ERRORS]) + only([22, 28], [
        POD_B_ERRORS, ("RunpodEndpointUnknown", {}, {"endpoint": "pod-b"})])
    + only([32], [POD_B_ERRORS]) + only([38, 39], []),
    # pod-b's job never ends: no result for three intervals and the 5 minutes' grace.
    "probe_hang": only([3, 10, 13], []) + only([17, 24], [
        ("RunpodProbeStale", {}, {"endpoint": "pod-b", "check_kind": "api"})])
    + only([28, 34], []),
    # No target: `up` is absent, not 0 (RunpodProbeDown cannot tell).
    "unscraped": only([3, 5], []) + only([7, 9], [
        ("RunpodProbeAbsent", {}, {"job": target()["job"]})]) + only([12, 15], []),
    # Overloaded: checks skipped and timeouts taken as unknown, counted; no endpoint alert.
    "overloaded": only([2, 6], []) + only([10, 14, 20], [
        ("RunpodProbeOverloaded", {}, target())]) + only([26, 28], []),
    "memory_leak": only([3, 10], []) + only([14, 17], [("RunpodProbeMemoryHigh", {}, target())])
    + only([19, 22], []),
    "ledger_truncated": only([4], [POD_B_404]) + only([9, 17], [
        POD_B_404, ("RunpodLedgerChainBroken", {}, target())]),
    "learning_unwritable": only([2, 5], []) + only([8, 10], [POD_B_404, LEARNING_FAILS])
    + only([14, 20], [LEARNING_FAILS]) + only([29, 30], []),
    # Results wait in memory and are written once the disk has room: store errors stop then;
    # the ledger's alert reads 15 minutes of its errors (and has no `for`).
    "disk_full": only([2], []) + only([8, 13], [POD_B_404, LEDGER_FAILS]) + only([19, 22], [
        LEDGER_FAILS, ("RunpodProbeStoreFailing", {}, target())]) + only([26], [LEDGER_FAILS])
    + only([32, 37], []),
}


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_recorded_scenario(scenario: str) -> None:
    run([recorded(scenario, CASES[scenario])])


def test_every_recording_has_its_case() -> None:
    assert {p.stem for p in RECORDINGS.glob("*.json")} == set(CASES) == set(
        record_daemon.SCENARIOS)


def fired_in_recordings() -> set[str]:
    return {name for checks in CASES.values() for _, name, exp in checks if exp}


def test_every_alert_fires_in_a_recording() -> None:
    """Every alert of the generated rules fires in some recorded scenario, with its exact
    labels and severity (``only`` asserts them): a new alert without a recorded case fails
    here."""
    assert fired_in_recordings() == set(EXPECT.names())


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
