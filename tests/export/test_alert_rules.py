"""The shipped alert rules under promtool, on synthetic series where they add what the
daemon's recorded output (test_recorded_rules.py, where every alert fires) does not: every
cause of the endpoint alerts, each silenced by a maintenance window, burns over hours, a
prompt run every 30 minutes, the fleet incident's contract, and silence for a healthy
endpoint or a single bad probe over 150 minutes. The daemon's own alerts (store, ledger,
LEARNING.md, memory, reload, discovery, down, absent) are tested on recordings only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool_cases import (
    STEPS,
    Expect,
    case,
    constant,
    counter,
    healthy_daemon,
    healthy_endpoint,
    run,
    series,
    state,
    steps,
)

from probe.export.alerting import endpoint_alerts
from probe.export.files import ALERTS_FILE
from probe.export.rules import CAUSES, DEGRADED, DOWN, causes_for, uncovered
from probe.outcome import Outcome

ROOT = Path(__file__).parents[2]
RULES = yaml.safe_load((ROOT / ALERTS_FILE).read_text())
EXPECT = Expect(RULES)
EP = "pod-a"


def maintained(input_series: list[dict[str, str]], maintenance: bool) -> list[dict[str, str]]:
    """The same series, with the endpoint in a maintenance window when asked."""
    if not maintenance:
        return input_series
    return [s if not s["series"].startswith("runpod_probe_maintenance{")
            else {**s, "values": constant(1)} for s in input_series]


def endpoint_base() -> list[dict[str, str]]:
    """Series every endpoint scenario starts from: maintenance off, the daemon healthy."""
    return [series("runpod_probe_maintenance", constant(0), endpoint=EP), *healthy_daemon()]


def cause_cases(maintenance: bool) -> list[dict[str, Any]]:
    cases = []
    for st in (DOWN, DEGRADED):
        alertname = "RunpodEndpointDown" if st == DOWN else "RunpodEndpointDegraded"
        for cause in causes_for(st):
            outcome = str(cause.outcomes[0])
            inputs = [*endpoint_base(), *state(EP, [st] * (STEPS + 1)),
                      series("runpod_probe_endpoint_cause", constant(1), endpoint=EP, state=st,
                             check="models", outcome=outcome)]
            exp = [] if maintenance else [EXPECT.alert(
                alertname, {"cause": cause.name}, endpoint=EP, check="models", outcome=outcome)]
            cases.append(case(f"{alertname} names its cause {cause.name}"
                              f"{' (maintenance: silent)' if maintenance else ''}",
                              maintained(inputs, maintenance), [("10m", alertname, exp)]))
        # The verdict without a cause the table knows (or none exported) still alerts.
        foreign = "expectation_failed" if st == DOWN else "http_404"
        inputs = [*endpoint_base(), *state(EP, [st] * (STEPS + 1)),
                  series("runpod_probe_endpoint_cause", constant(1), endpoint=EP, state=st,
                         check="chat", outcome=foreign)]
        exp = [] if maintenance else [EXPECT.alert(alertname, {"cause": "other"}, endpoint=EP)]
        cases.append(case(f"{alertname} without a known cause still fires", maintained(
            inputs, maintenance), [("10m", alertname, exp)]))
    return cases


def test_every_failing_outcome_names_a_cause() -> None:
    assert uncovered() == {Outcome.OK, Outcome.SKIPPED_BUDGET}
    assert len({c.name for c in CAUSES}) == len(CAUSES)


def burn(failure_share: float, slo: str = "availability") -> list[dict[str, str]]:
    """An endpoint probed 100 times a minute, ``failure_share`` of them failing (or slow)."""
    bad = counter(100 * failure_share)
    up = series("runpod_probe_up", constant(1), endpoint=EP, check="models")
    if slo == "availability":
        return [up, series("runpod_probe_observations_total", counter(100), endpoint=EP,
                           check_kind="api"),
                series("runpod_probe_failures_by_outcome_total", bad, endpoint=EP,
                       check_kind="api", outcome="http_502")]
    return [up, series("runpod_probe_latency_seconds_count", counter(100), endpoint=EP,
                       check_kind="api"),
            series("runpod_probe_latency_seconds_bucket", counter(100 * (1 - failure_share)),
                   endpoint=EP, check_kind="api", le="2.5")]


def slo_cases(maintenance: bool) -> list[dict[str, Any]]:
    cases = []
    for slo in ("availability", "latency"):
        def exp(severity: str, slo: str = slo) -> list[dict[str, Any]]:
            return [] if maintenance else [EXPECT.alert(
                "RunpodErrorBudgetBurn", {"slo": slo, "severity": severity}, endpoint=EP)]
        # everything fails: the 1h/5m page fires after its 2 minutes, the ticket too
        # (the fast burn inhibits the slow one in Alertmanager, not here)
        fast = [*endpoint_base(), *burn(1.0, slo)]
        cases.append(case(f"{slo}: a total outage burns fast: page", maintained(
            fast, maintenance), [("10m", "RunpodErrorBudgetBurn",
                                  exp("critical") + exp("warning"))]))
        # 2 % bad: over 3x (1.5 %) for the 1d/2h ticket, under 6x (3 %) for the 6h/30m page
        slow = [*endpoint_base(), *burn(0.02, slo)]
        cases.append(case(f"{slo}: a steady 2 % burns slowly: ticket only", maintained(
            slow, maintenance), [("150m", "RunpodErrorBudgetBurn", exp("warning"))]))
    return cases


def test_slo_burns_a_single_probe_of_a_rarely_probed_endpoint_cannot_page() -> None:
    """The minimum-sample guard, alone: every window's ratio is over its threshold."""
    obs = steps([float(i // 5) for i in range(STEPS + 1)])  # one probe every 5 minutes
    failures = steps([float(i >= 30 and (i // 5) >= 6) for i in range(STEPS + 1)])
    inputs = [*endpoint_base(),
              series("runpod_probe_up", constant(0), endpoint=EP, check="roundtrip"),
              series("runpod_probe_observations_total", obs, endpoint=EP,
                     check_kind="generation"),
              series("runpod_probe_failures_by_outcome_total", failures, endpoint=EP,
                     check_kind="generation", outcome="timeout")]
    run([case("one failed round trip among a dozen: the ratio burns, the guard holds", inputs,
              [(t, "RunpodErrorBudgetBurn", []) for t in ("31m", "33m", "40m", "60m")])])


def check_cases(maintenance: bool) -> list[dict[str, Any]]:
    base = endpoint_base()

    def exp(name: str, **labels: str) -> list[dict[str, Any]]:
        return [] if maintenance else [EXPECT.alert(name, {}, endpoint=EP, **labels)]
    # two probes a minute, both failing, except one passing probe at minute 7
    failing = steps([2.0 * i - (1 if i > 7 else 0) for i in range(STEPS + 1)])
    prompt = steps([float(i == 12) for i in range(STEPS + 1)])
    error = counter(1)  # every result of the check, once a minute, ends in error
    return [
        case("checks failing most probes fire, one passing probe does not reset it",
             maintained([*base, series("runpod_probe_observations_total", counter(2),
                                       endpoint=EP, check_kind="api"),
                         series("runpod_probe_observation_failures_total", failing,
                                endpoint=EP, check_kind="api")], maintenance),
             [("12m", "RunpodCheckFailing", exp("RunpodCheckFailing", check_kind="api"))]),
        case("a governed prompt failing for 15 minutes fires despite one pass",
             maintained([*base, series("runpod_probe_prompt_pass", prompt, endpoint=EP,
                                       prompt="arithmetic")], maintenance),
             [("20m", "RunpodPromptFailing",
               exp("RunpodPromptFailing", prompt="arithmetic"))]),
        case("a check ending in error (a runpod-probe bug) fires",
             maintained([*base, series("runpod_probe_failures_by_outcome_total", error,
                                       endpoint=EP, check_kind="api", outcome="error"),
                         series("runpod_probe_observations_total", constant(0), endpoint=EP,
                                check_kind="api")], maintenance),
             [("12m", "RunpodProbeError", exp("RunpodProbeError", check_kind="api"))]),
        # stale at: the last result (at 0) + 3 intervals of a minute + 5 minutes = 8m
        case("a check run every minute without results for three intervals fires",
             maintained([*base, series("runpod_probe_stale_at_timestamp_seconds",
                                       constant(480), endpoint=EP, check_kind="api")],
                        maintenance),
             [("12m", "RunpodProbeStale", []),
              ("14m", "RunpodProbeStale", exp("RunpodProbeStale", check_kind="api"))]),
        case("a prompt run every 30 minutes is not stale between its runs",
             [*base, series("runpod_probe_stale_at_timestamp_seconds",
                            steps([5700.0] * 30 + [7500.0] * (STEPS - 29)), endpoint=EP,
                            check_kind="generation")],
             [("25m", "RunpodProbeStale", []), ("55m", "RunpodProbeStale", [])]),
        case("an endpoint that cannot be observed for 15 minutes fires",
             maintained([*base, *state(EP, ["unknown"] * (STEPS + 1))], maintenance),
             [("10m", "RunpodEndpointUnknown", []),
              ("17m", "RunpodEndpointUnknown", exp("RunpodEndpointUnknown"))]),
    ]


def with_daemon(**changes: str) -> list[dict[str, str]]:
    """The healthy daemon's series with some values replaced (by metric name)."""
    out = []
    for s in healthy_daemon():
        name = s["series"].split("{")[0]
        out.append({**s, "values": changes[name]} if name in changes else s)
    return out


JOB = {"job": "runpod-probe", "instance": "127.0.0.1:9464"}


def fleet_cases() -> list[dict[str, Any]]:
    """The incidents branch's contract: runpod_probe_incident{scope,cause},
    runpod_probe_endpoint_incident{endpoint,scope,cause} and runpod_probe_offline."""
    scope = {"scope": "proxy:127.0.0.1", "cause": "server_down"}
    down = [*state(EP, ["down"] * (STEPS + 1)),
            series("runpod_probe_endpoint_cause", constant(1), endpoint=EP, state="down",
                   check="models", outcome="http_502")]
    incident = [series("runpod_probe_incident", constant(1), **scope, **JOB),
                series("runpod_probe_endpoint_incident", constant(1), endpoint=EP, **scope,
                       **JOB)]
    offline = with_daemon(runpod_probe_offline=constant(1))
    return [
        case("a fleet incident pages once; the endpoints it counts do not",
             [*endpoint_base(), *down, *incident],
             [("0m", "RunpodFleetIncident", []),
              ("1m", "RunpodFleetIncident", [EXPECT.alert("RunpodFleetIncident", {}, **scope)]),
              ("10m", "RunpodEndpointDown", []), ("10m", "RunpodErrorBudgetBurn", [])]),
        case("the endpoint pages once the incident is closed and it is still down",
             [*endpoint_base(), *down,
              series("runpod_probe_endpoint_incident", "1x9 stale", endpoint=EP, **scope,
                     **JOB)],
             [("10m", "RunpodEndpointDown", []),
              ("12m", "RunpodEndpointDown", [EXPECT.alert(
                  "RunpodEndpointDown", {"cause": "server_down"}, endpoint=EP, check="models",
                  outcome="http_502")])]),
        case("the probe offline pages once; its unknown endpoints and incidents do not",
             [series("runpod_probe_maintenance", constant(0), endpoint=EP), *offline,
              *state(EP, ["unknown"] * (STEPS + 1)), *incident],
             [("2m", "RunpodProbeOffline", [EXPECT.alert("RunpodProbeOffline", {},
                                                         instance="127.0.0.1:9464")]),
              ("20m", "RunpodEndpointUnknown", []), ("20m", "RunpodFleetIncident", [])]),
    ]


def test_fleet_incidents_and_the_probe_offline_page_once() -> None:
    run(fleet_cases())


@pytest.mark.parametrize(("check", "kind", "outcome"), [
    ("prompt:arithmetic", "generation", "expectation_failed"),
    ("models", "api", "error")], ids=["wrong-answer", "probe-error"])
def test_answers_that_fail_and_probe_errors_do_not_burn_availability(
        check: str, kind: str, outcome: str) -> None:
    """Wrong answers, a small context or another model open tickets, not the SLO's page;
    a result that did not observe the endpoint (`error`) is no bad event either."""
    inputs = [*endpoint_base(),
              series("runpod_probe_up", constant(0), endpoint=EP, check=check),
              series("runpod_probe_observations_total", counter(100), endpoint=EP,
                     check_kind=kind),
              series("runpod_probe_failures_by_outcome_total", counter(100), endpoint=EP,
                     check_kind=kind, outcome=outcome)]
    run([case(f"every {check} result {outcome}: no availability burn", inputs,
              [("10m", "RunpodErrorBudgetBurn", []), ("150m", "RunpodErrorBudgetBurn", [])])])


def silent_cases() -> list[dict[str, Any]]:
    times = ("1m", "5m", "12m", "20m", "45m", "90m", "150m")
    everything = [(t, name, []) for t in times for name in EXPECT.names()]
    return [
        case("a healthy endpoint and daemon: nothing fires",
             [*healthy_endpoint(EP), *healthy_daemon()], everything),
        case("one bad probe in every signal: nothing fires",
             [*healthy_endpoint(EP, glitch_at=10), *healthy_daemon(glitch_at=10)], everything),
    ]



@pytest.mark.parametrize("maintenance", [False, True], ids=["fires", "maintenance-silences"])
def test_endpoint_alerts(maintenance: bool) -> None:
    run(cause_cases(maintenance) + slo_cases(maintenance) + check_cases(maintenance))


def test_nothing_fires_for_a_healthy_endpoint_or_a_single_bad_probe() -> None:
    run(silent_cases())


def held_verdict_case() -> dict[str, Any]:
    """Down (404) for 20 minutes, up for 5, then the daemon stops for 20 (not scraped: its
    series leave): the stop holds what the last scrape said (up), not also the down state the
    endpoint left within the hold, so it pages nothing again. (That a down endpoint's alert is
    held through a stop: test_recorded_rules.py.)"""
    timeline = ["down"] * 20 + ["up"] * 5 + ["stopped"] * 20 + ["up"] * (STEPS - 44)
    scraped = steps([0.0 if s == "stopped" else 1.0 for s in timeline])

    def present(while_: str) -> str:  # 1 while current, stale when it leaves (as scraped)
        out: list[str] = []
        for s in timeline:
            out.append("1" if s == while_ else "stale" if out and out[-1] == "1" else "_")
        return " ".join(out)

    inputs = [
        *(s if not s["series"].startswith("up{") else {**s, "values": scraped}
          for s in endpoint_base()),
        *(series("runpod_probe_endpoint_state", present(st), endpoint=EP, state=st)
          for st in ("down", "up")),
        series("runpod_probe_endpoint_cause", present("down"), endpoint=EP, state="down",
               check="models", outcome="http_404"),
    ]
    down = EXPECT.alert("RunpodEndpointDown", {"cause": "pod_gone"}, endpoint=EP,
                        check="models", outcome="http_404")
    return case("a stop holds the last scrape's verdict, not a state left before it", inputs,
                [("10m", "RunpodEndpointDown", [down]), ("28m", "RunpodEndpointDown", []),
                 ("35m", "RunpodEndpointDown", []), ("42m", "RunpodEndpointDown", [])])


def test_a_stop_holds_the_last_verdict_only() -> None:
    run([held_verdict_case()])


def test_every_rule_has_its_annotations() -> None:
    """(That every alert fires, on the daemon's recorded output: test_recorded_rules.py.)"""
    for rule in EXPECT.alerts:
        assert {"summary", "description", "runbook_url", "dashboard_url"} <= set(
            rule["annotations"]), rule["alert"]


def test_every_endpoint_alert_is_silenced_by_maintenance_incidents_and_offline() -> None:
    # Each guard names the recorded view it reads (an alert reading a window reads the max
    # over that window of the view of endpoints down, degraded or in an incident).
    guards = ("\nunless on (endpoint) ", "\nunless on () ")
    silenced = "\nunless on (endpoint) endpoint:runpod_probe_silenced:held"  # incident or
    # maintenance; an alert reading a window: maintenance, and the window's told failures
    maintenance = (silenced, "\nunless on (endpoint) endpoint:runpod_probe_maintenance:held == 1")
    incident = (silenced,
                "\nunless on (endpoint) max_over_time(endpoint:runpod_probe_told:failing[")
    offline = ("\nunless on () runpod_probe:offline:all == 1",
               "\nunless on () min (max_over_time(instance:runpod_probe_offline:held[")
    alerts = 0
    for group in RULES["groups"]:
        if group["name"] in ("runpod-probe-endpoints", "runpod-probe-burn",
                             "runpod-probe-checks"):
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts += 1
                    assert all(g in rule["expr"] for g in guards), rule["alert"]
                    assert any(o in rule["expr"] for o in offline), rule["alert"]
                    assert any(m in rule["expr"] for m in maintenance), rule["alert"]
                    assert any(i in rule["expr"] for i in incident), rule["alert"]
    assert alerts == len(endpoint_alerts()) + 4 + 4  # the SLO burns and the check alerts
