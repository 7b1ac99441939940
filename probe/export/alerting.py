"""The alert rules: one alert per endpoint and incident, the cause as a label.

Endpoint alerts read the endpoint's verdict (``runpod_probe_endpoint_state``, after the
daemon's hysteresis) and what caused it (``runpod_probe_endpoint_cause``, stable for the
episode), so a failure switching from timeout to 502 or one passing probe does not restart
the ``for`` timer, and one dead pod is one alert. Check-level and prompt alerts read
counters or time-in-state over a window, for the same reason.

Every endpoint alert is silenced while the endpoint is in a maintenance window, counted in
an open fleet incident (which pages once, ``RunpodFleetIncident``), or while the probe
itself is offline (``RunpodProbeOffline``). While the daemon is not scraped (stopped,
restarting) the gauges these alerts read are held at their last values (``held``), so a
stop neither resolves an endpoint's alert nor, once the daemon is back with its verdicts
restored from the database, fires it again: the stop pages once, as RunpodProbeDown.
Severities follow the paging policy of ``probe.export.rules`` (``tier``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.export.ha import HaSettings
from probe.export.links import EndpointPanel, FleetPanel, Links
from probe.export.recording import SLI_SELECTOR, SLIS, groups
from probe.export.rules import DEGRADED, DOWN, SEVERITY_OF_TIER, Cause, causes_for, tier
from probe.export.slo import BURN_WINDOWS, SloSettings

JOB = 'job="runpod-probe"'  # the scrape job name the daemon alerts expect
MEMORY_MAX_BYTES = 512 * 1024 * 1024  # the systemd unit's MemoryMax=512M
UP = f"up{{{JOB}}}"
# Results that were not ok, by kind of check and outcome (a series once an outcome occurred).
FAILURES_BY_OUTCOME = "runpod_probe_failures_by_outcome_total"
# How long the gauges keep their last values while the daemon is not scraped: longer than a
# restart or a short stop; a longer stop resolves the endpoints' alerts under the inhibition
# of RunpodProbeDown, and pages again what is still down after it.
HOLD = "15m"
# A fast burn left by an endpoint's down (or degraded) episode or a fleet incident pages
# nothing until the longest short window that pages (30m) has forgotten it: it paged.
PAGED_BURN_HOLD = "30m"


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    section: str  # of docs/runbook.md
    panel: FleetPanel | EndpointPanel
    labels: tuple[tuple[str, str], ...] = ()

    def rule(self, links: Links) -> dict[str, Any]:
        return {
            "alert": self.name, "expr": self.expr, "for": self.for_,
            "labels": {"severity": self.severity, **dict(self.labels)},
            "annotations": {"summary": self.summary, "description": self.description,
                            "runbook_url": links.runbook(self.section),
                            "dashboard_url": links.panel(self.panel)},
        }


def held(selector: str) -> str:
    """``selector`` now or, while the daemon is not scraped, its last values of ``HOLD``."""
    return f"({selector} or (last_over_time({selector}[{HOLD}]) unless on () {UP} == 1))"


def held_view(record: str, expr: str) -> str:
    """The recorded view ``record`` of ``expr``: ``expr`` now or, while the daemon is not
    scraped, the view's own last value, for ``HOLD`` after the last scrape. Reading back one
    recorded sample per series, not ``last_over_time`` of every raw series over ``HOLD`` at
    every evaluation, is what keeps the dense views (a series per endpoint) cheap; and what is
    held is what the last scrape said, not also a state the endpoint left minutes before."""
    return (f"{expr}\nor\n(\n  {record}\n  unless on () {UP} == 1\n"
            f"  and on () max_over_time({UP}[{HOLD}]) == 1\n)")


# Each probe's offline flag (held), once per evaluation: an offline probe has no vote.
OFFLINE_BY_INSTANCE = "instance:runpod_probe_offline:held"
ONLINE = f"unless on (instance) {OFFLINE_BY_INSTANCE} == 1"
# The verdict views the endpoint alerts read, recorded once per evaluation at the top of
# their group (rules of a group run in order): reading the held gauges of every endpoint
# once, not once per alert, is what keeps the group cheap at 10,000 endpoints.
STATE = "endpoint:runpod_probe_endpoint_state:quorum"
CAUSE = "endpoint:runpod_probe_endpoint_cause:held"
INCIDENT = "endpoint:runpod_probe_endpoint_incident:held"
MAINTENANCE = "endpoint:runpod_probe_maintenance:held"
ALL_OFFLINE = "runpod_probe:offline:all"  # 1 when no probe is online
ONLINE_PROBES = "runpod_probe:online:count"  # the voters on a fleet incident
# How many online probes give the endpoint a verdict (the daemon exports the state it is in,
# one series per probe and endpoint): the quorum's denominator.
VOTERS = "endpoint:runpod_probe_voters:count"
# Each online probe's held state of each endpoint, read from the raw gauges once.
PROBE_STATE = "endpoint_instance:runpod_probe_endpoint_state:held"

IN_INCIDENT = f"{INCIDENT} == 1"
OFFLINE = f"{ALL_OFFLINE} == 1"
IN_MAINTENANCE = f"{MAINTENANCE} == 1"
# The endpoint's verdict already says it (its own alert is out): one alert per endpoint.
_FAILING = f'{STATE}{{state=~"down|degraded"}}'
VERDICT_SAYS_IT = f"max by (endpoint) ({_FAILING}) == 1"
# runpod-probe's own call to RunPod's API (discovery's pseudo-endpoint): RunpodDiscoveryFailing
# says it, as a ticket; it is no endpoint anyone serves from.
DISCOVERY = held('runpod_probe_up{check="discovery"}')


# The endpoint is down or degraded, or in a fleet incident: its own alert or the incident's
# says it. Recorded once per evaluation, only for such endpoints (sparse: none in a healthy
# fleet), so the alerts that read a window of it read a few series, not the verdict views of
# every endpoint over that window once per alert.
TOLD = "endpoint:runpod_probe_told:failing"


# The endpoint is in a fleet incident or in maintenance: its own alerts are silenced.
# Recorded once per evaluation, only for such endpoints, so the guard of each endpoint alert
# reads a few series, not the incident view of every endpoint.
SILENCED = "endpoint:runpod_probe_silenced:held"


def told_within(window: str) -> str:
    """The endpoint was down, degraded or in a fleet incident within ``window`` (the window
    an alert reads): its failures then are that episode's, already told."""
    return f"max_over_time({TOLD}[{window}]) == 1"


def verdict_views(ha: HaSettings) -> list[dict[str, Any]]:
    """The recorded views: per probe whether it is offline; per endpoint its state by the
    quorum of the online probes (``ha.quorum``), its causes, incident and maintenance."""
    return [
        {"record": OFFLINE_BY_INSTANCE,
         "expr": f"max by (instance) {held('runpod_probe_offline')}"},
        {"record": ALL_OFFLINE, "expr": f"min ({OFFLINE_BY_INSTANCE})"},
        {"record": ONLINE_PROBES, "expr": f"count ({OFFLINE_BY_INSTANCE} == 0)"},
        {"record": PROBE_STATE, "expr": held_view(
            PROBE_STATE, f"(\n  max by (endpoint, instance, state) (runpod_probe_endpoint_state)"
                         f"\n  {ONLINE}\n)")},
        {"record": VOTERS, "expr": f"count by (endpoint) (\n  count by (endpoint, instance) "
                                   f"({PROBE_STATE})\n)"},
        {"record": STATE, "expr": ha.agreed(
            f"count by (endpoint, state) ({PROBE_STATE} == 1)", VOTERS)},
        {"record": CAUSE, "expr": ha.agreed(
            "count by (endpoint, state, check, outcome) (\n  "
            f"{held('runpod_probe_endpoint_cause')}\n  {ONLINE}\n)", VOTERS)},
        # 0 for every other endpoint: the daemon exports only the endpoints in an incident
        {"record": INCIDENT, "expr": ha.agreed(
            f"count by (endpoint) (\n  {held('runpod_probe_endpoint_incident')} == 1\n"
            f"  {ONLINE}\n)", VOTERS) + f"\nor\n{VOTERS} * 0"},
        # Sparse (present only for the endpoints in maintenance, as 1): every endpoint
        # alert's guard reads a few series rather than every endpoint.
        {"record": MAINTENANCE, "expr": held_view(
            MAINTENANCE, "max by (endpoint) (runpod_probe_maintenance) == 1")},
        {"record": TOLD, "expr": f"{VERDICT_SAYS_IT}\nor\n{IN_INCIDENT}"},
        {"record": SILENCED, "expr": f"{IN_INCIDENT}\nor\n{IN_MAINTENANCE}"},
    ]


def _endpoint_guard(expr: str, *unless: str, window: str | None = None) -> str:
    """``expr`` unless the endpoint is in an incident or maintenance (``SILENCED``), or the
    probe offline (and unless each of ``unless``, matched on the endpoint). An alert that
    reads a ``window`` stays quiet while the endpoint is in maintenance, or was down,
    degraded or in an incident, or the probe offline, within that window: its failures are
    theirs, already told."""
    guards, offline = (*unless, SILENCED), OFFLINE
    quiet: tuple[str, ...] = ()
    if window is not None:
        guards = (*unless, told_within(window))
        offline = f"min (max_over_time({OFFLINE_BY_INSTANCE}[{window}])) == 1"
        quiet = (IN_MAINTENANCE,)
    lines = [f"unless on (endpoint) {u}" for u in guards]
    return (f"(\n{_indent(expr)}\n)\n" + "\n".join(lines) + f"\nunless on () {offline}"
            + "".join(f"\nunless on (endpoint) {q}" for q in quiet))


def _indent(expr: str) -> str:
    return "\n".join("  " + line for line in expr.splitlines())


def _state(state: str) -> str:
    return (f'max by (endpoint) ({STATE}{{state="{state}"}}) == 1\n'
            f"unless on (endpoint) {DISCOVERY}")


def _cause(state: str, regex: str) -> str:
    selector = f'{CAUSE}{{state="{state}",outcome=~"{regex}"}}'
    return f"max by (endpoint, check, outcome) ({selector}) == 1"


def cause_alert(state: str, cause: Cause, page_causes: tuple[str, ...] = ()) -> Alert:
    name = "RunpodEndpointDown" if state == DOWN else "RunpodEndpointDegraded"
    expr = f"{_cause(state, cause.outcome_regex)}\nand on (endpoint)\n{_state(state)}"
    severity = SEVERITY_OF_TIER[tier(state, cause.name, page_causes)]
    return Alert(
        name, _endpoint_guard(expr), "1m" if state == DOWN else "5m", severity,
        f"{{{{ $labels.endpoint }}}} is {state}: {cause.summary}",
        f"{{{{ $labels.endpoint }}}} has been {state} since its {{{{ $labels.check }}}} check "
        f"answered {{{{ $labels.outcome }}}}. {cause.action}",
        cause.section, EndpointPanel.STATE_TIMELINE, (("cause", cause.name),))


def fallback_alert(state: str) -> Alert:
    """The verdict alone, when no cause of the table explains it (or none is exported)."""
    name = "RunpodEndpointDown" if state == DOWN else "RunpodEndpointDegraded"
    known = "|".join(c.outcome_regex for c in causes_for(state))
    expr = f"{_state(state)}\nunless on (endpoint)\n{_cause(state, known)}"
    return Alert(
        name, _endpoint_guard(expr), "1m" if state == DOWN else "5m",
        SEVERITY_OF_TIER[tier(state, "other")], f"{{{{ $labels.endpoint }}}} is {state}",
        f"{{{{ $labels.endpoint }}}} is {state} for a cause the alert table does not name: "
        "the endpoint's cause panel and `runpod-probe ledger list` show it.",
        f"endpoint-{state}", EndpointPanel.STATE_TIMELINE, (("cause", "other"),))


def endpoint_alerts(page_causes: tuple[str, ...] = ()) -> list[Alert]:
    alerts = [cause_alert(state, cause, page_causes) for state in (DOWN, DEGRADED)
              for cause in causes_for(state)]
    alerts += [fallback_alert(DOWN), fallback_alert(DEGRADED)]
    alerts.append(Alert(
        "RunpodEndpointUnknown", _endpoint_guard(_state("unknown")), "15m", "warning",
        "{{ $labels.endpoint }} cannot be observed",
        "runpod-probe has not been able to observe {{ $labels.endpoint }} for 15 minutes "
        "(RunPod's API unreachable or rate limiting): its real state is unknown, not healthy.",
        "endpoint-unknown", EndpointPanel.STATE_TIMELINE))
    return alerts


def slo_alerts(settings: SloSettings) -> list[Alert]:
    alerts = []
    for slo in SLIS:
        for severity in ("critical", "warning"):
            windows = [w for w in BURN_WINDOWS if w.severity == severity]
            arms = []
            for w in windows:
                threshold = round(w.factor(settings.period_s) * settings.budget(slo), 6)
                s = f'{{slo="{slo}"}}'
                arms.append(f"(\n  slo:sli_error:ratio_rate{w.long}{s} > {threshold:g}\n"
                            f"  and slo:sli_error:ratio_rate{w.short}{s} > {threshold:g}\n"
                            f"  and slo:sli_events_per_check:increase{w.long}{s}"
                            f" >= {settings.guard(slo, w)}\n)")
            burns = " or ".join(f"{w.factor(settings.period_s):g}x over {w.long} and {w.short}"
                                for w in windows)
            objective = (f"{settings.availability:g} % of observations pass"
                         if slo == "availability" else
                         f"{settings.latency:g} % of checks finish within "
                         f"{settings.latency_threshold_s:g}s")
            pace = "fast: page" if severity == "critical" else "steadily: ticket"
            # A fast burn pages failures nothing else paged: not while, nor for the short
            # window after, the endpoint is down, degraded or in a fleet incident.
            fast = severity == "critical"
            guard = _endpoint_guard(
                "\nor\n".join(arms),
                *(() if fast else (VERDICT_SAYS_IT,)),
                window=PAGED_BURN_HOLD if fast else None)
            alerts.append(Alert(
                "RunpodErrorBudgetBurn", guard, "2m",
                severity,
                f"{{{{ $labels.endpoint }}}} burns its {slo} error budget {pace}",
                f"The {slo} SLO of {{{{ $labels.endpoint }}}} ({objective} over "
                f"{settings.period}) is burning its error budget at {burns}.",
                f"slo-{slo}", EndpointPanel.BURN_RATE, (("slo", slo),)))
    return alerts


# The verdict views and the endpoint alerts (a down endpoint pages after 1m): every 30s,
# so a page comes 1m to 1m30s after the verdict, at any global evaluation interval.
ENDPOINTS_INTERVAL = "30s"
# The burn alerts read the SLO groups' recorded ratios (the 30m and 1h windows move every
# minute) and hold 2m: evaluated every minute, in a group of their own, reading the last
# verdict views the endpoints group recorded.
BURN_INTERVAL = "1m"


# The check alerts' 10-minute counts, per endpoint and kind of check, each read from the
# raw counters once per evaluation of their group (``CHECKS_INTERVAL``).
FAILURES_10M = "endpoint_check_kind:runpod_probe_observation_failures:increase10m"
OBSERVED_10M = "endpoint_check_kind:runpod_probe_observations:increase10m"
ERRORS_10M = "endpoint_check_kind:runpod_probe_errors:increase10m"
# The check alerts are tickets that read 10-15 minute windows of every endpoint's checks:
# evaluated every minute, not at Prometheus's pace (their ``for`` is 5m).
CHECKS_INTERVAL = "1m"


def check_counts() -> list[dict[str, Any]]:
    # Errors did not observe the endpoint (they are no observations): their share of the
    # observations and errors. An outcome's series starts at its first result, which
    # increase() cannot see: one error never fires, two in the window may.
    # (0, not absent, without errors: every recorded series has data.) The failures are
    # recorded only where there are some: RunpodCheckFailing divides a few series.
    return [
        {"record": FAILURES_10M, "expr": "sum by (endpoint, check_kind) (increase("
         f"runpod_probe_observation_failures_total{{{SLI_SELECTOR}}}[10m])) > 0"},
        {"record": OBSERVED_10M, "expr": "sum by (endpoint, check_kind) (increase("
         "runpod_probe_observations_total[10m]))"},
        {"record": ERRORS_10M, "expr": "sum by (endpoint, check_kind) (increase("
         f'{FAILURES_BY_OUTCOME}{{outcome="error"}}[10m]))\nor\n{OBSERVED_10M} * 0'},
    ]


def check_alerts() -> list[Alert]:
    failures = FAILURES_10M
    observed = f"{OBSERVED_10M}{{{SLI_SELECTOR}}}"
    errors, observed_all = ERRORS_10M, OBSERVED_10M
    return [
        Alert("RunpodCheckFailing", _endpoint_guard(
            f"{failures}\n/\n{observed}\n> 0.5\nand\n{observed} >= 3", window="10m"),
            "5m", "warning",
            "{{ $labels.endpoint }}: its {{ $labels.check_kind }} checks fail most probes",
            "More than half of the {{ $labels.check_kind }} probes of {{ $labels.endpoint }} "
            "failed over the last 10 minutes, for 5 minutes (Alertmanager's inhibition hides this "
            "while the endpoint as a whole is down).", "check-failing",
            EndpointPanel.CHECKS_PASSING),
        Alert("RunpodPromptFailing", _endpoint_guard(
            "avg_over_time(runpod_probe_prompt_pass[15m]) < 0.5", window="15m"), "5m",
            "warning",
            "{{ $labels.endpoint }}: governed prompt {{ $labels.prompt }} fails",
            "The answer of {{ $labels.endpoint }} to the governed prompt {{ $labels.prompt }} "
            "failed its expectation most of the last 15 minutes.",
            "prompt-failing", EndpointPanel.PROMPT_PASS),
        Alert("RunpodProbeError", _endpoint_guard(
            f"{errors}\n/\n(\n{_indent(errors)}\n  +\n{_indent(observed_all)}\n)\n> 0.25\nand\n"
            f"{errors} >= 1.5"), "5m", "warning",
            "runpod-probe fails internally probing {{ $labels.endpoint }}'s "
            "{{ $labels.check_kind }} checks",
            "The {{ $labels.check_kind }} checks of {{ $labels.endpoint }} end in `error`, a "
            "bug in runpod-probe itself: the endpoint's real state is not being observed.",
            "probe-error", EndpointPanel.PROBE_ERRORS),
        Alert("RunpodProbeStale", _endpoint_guard(
            "min by (endpoint, check_kind) (runpod_probe_stale_at_timestamp_seconds) < time()"),
            "5m", "warning",
            "{{ $labels.endpoint }}: a {{ $labels.check_kind }} check has no result for three "
            "intervals",
            "The scheduler has not produced a {{ $labels.check_kind }} result for "
            "{{ $labels.endpoint }} in three of its intervals (plus 5 minutes): it is stalled "
            "or overloaded.", "probe-stale", EndpointPanel.LAST_PROBE_AGE),
    ]


def daemon_alerts() -> list[Alert]:
    # The share of the window's scrapes at which discovery's outcome was a refusal: its
    # pseudo-endpoint has no per-kind counters, only the per-check gauges (``outcome`` is
    # there while the outcome is not ok), and a 401/403 lasts (a key does not flicker).
    unauthorized = ('sum by (endpoint, check) (count_over_time(runpod_probe_outcome'
                    '{check="discovery",outcome="unauthorized"}[30m]))\n/\n'
                    'sum by (endpoint, check) (count_over_time(runpod_probe_up'
                    '{check="discovery"}[30m]))\n> 0.5')
    failing = 'max by (endpoint, check) (avg_over_time(runpod_probe_up{check="discovery"}[30m]))'
    return [
        Alert("RunpodProbeDown", f"up{{{JOB}}} == 0", "1m", "critical",
              "runpod-probe is down: nothing is watching the endpoints",
              "Prometheus cannot scrape runpod-probe at {{ $labels.instance }}: the daemon is "
              "stopped, crashed or unreachable, and every endpoint alert is blind.",
              "probe-down", FleetPanel.DAEMON_UP),
        Alert("RunpodProbeAbsent", f"absent(up{{{JOB}}})", "1m", "critical",
              "runpod-probe is not scraped: nothing is watching the endpoints",
              'Prometheus has no target with job="runpod-probe": the scrape config lost it.',
              "probe-absent", FleetPanel.DAEMON_UP),
        Alert("RunpodProbeStoreFailing", "increase(runpod_probe_store_errors_total[10m]) > 0",
              "10m", "warning", "runpod-probe cannot write results to SQLite",
              "Writes to the results database keep failing (disk full or locked); results wait "
              "in memory and are dropped once the queue is full.",
              "store-failing", FleetPanel.STORE),
        Alert("RunpodProbeConfigReloadFailed", "runpod_probe_config_last_reload_successful == 0",
              "1m", "warning", "runpod-probe refused its new config",
              "The last reload was refused; the previous config is still running.",
              "config-reload-failed", FleetPanel.CONFIG_RELOAD),
        Alert("RunpodLedgerChainBroken", "runpod_probe_ledger_chain_valid == 0", "1m",
              "warning", "runpod-probe's ledger fails verification",
              "The ledger's hash chain does not verify: an entry was changed or lost. Its "
              "exports stop until it is repaired.", "ledger-chain-broken",
              FleetPanel.LEDGER_CHAIN),
        Alert("RunpodLedgerWriteFailing",
              "increase(runpod_probe_ledger_write_errors_total[15m]) > 0", "0m", "warning",
              "runpod-probe cannot write its ledger",
              "Ledger entries could not be written in the last 15 minutes: findings are lost.",
              "ledger-write-failing", FleetPanel.LEDGER_ERRORS),
        Alert("RunpodLearningAppendFailing",
              "increase(runpod_probe_learning_append_errors_total[15m]) > 0", "0m", "warning",
              "runpod-probe cannot append to LEARNING.md",
              "Lessons from the ledger could not be appended to LEARNING.md in the last 15 "
              "minutes (permissions, disk or a moved file).",
              "learning-append-failing", FleetPanel.LEDGER_ERRORS),
        Alert("RunpodProbeMemoryHigh",
              f"process_resident_memory_bytes{{{JOB}}} > {int(MEMORY_MAX_BYTES * 0.8)}", "10m",
              "warning", "runpod-probe uses over 80 % of its 512 MiB memory limit",
              "The daemon's resident memory at {{ $labels.instance }} has been above 80 % of "
              "the unit's MemoryMax=512M for 10 minutes; at the limit systemd kills it.",
              "probe-memory-high", FleetPanel.MEMORY),
        Alert("RunpodProbeOverloaded",
              f"increase(runpod_probe_overload_unobserved_total{{{JOB}}}[10m])\n+\n"
              f"increase(runpod_probe_overload_skipped_checks_total{{{JOB}}}[10m])\n> 0",
              "5m", "warning", "runpod-probe is overloaded: it cannot run all its checks",
              "The daemon at {{ $labels.instance }} has more checks than it can run: some "
              "started over an interval late and were skipped, or timed out while its event "
              "loop stalled and were taken as unknown (never as the endpoint's failure).",
              "probe-overloaded", FleetPanel.SCHEDULER_LAG),
        Alert("RunpodDiscoveryFailing", unauthorized, "10m", "warning",
              "RunPod's API refuses discovery: the API key lacks permission",
              "Listing pods or serverless endpoints answers 401/403: the key works for the "
              "proxy but may not read the fleet. Configured endpoints are still probed.",
              "key-lacks-permission", FleetPanel.DISCOVERY_OUTCOME,
              (("cause", "key_lacks_permission"),)),
        Alert("RunpodDiscoveryFailing",
              f"{failing} < 0.5\nunless on (endpoint)\n(\n{_indent(unauthorized)}\n)\n"
              # the probe's own network failed in the window: RunpodProbeOffline paged it
              "unless on () max(max_over_time(runpod_probe_offline[30m])) == 1",
              "10m", "warning", "discovery of the RunPod fleet keeps failing",
              "Listing the fleet through RunPod's API failed most of the last 30 minutes; the "
              "last known fleet is still probed, new pods are not.",
              "discovery-failing", FleetPanel.DISCOVERY_OUTCOME, (("cause", "api_failing"),)),
    ]


def fleet_incident(ha: HaSettings) -> str:
    """1 for each fleet incident (scope, cause) the quorum of the online probes reports."""
    return ha.agreed(f"count by (scope, cause) (\n  {held('runpod_probe_incident')} == 1\n"
                     f"  {ONLINE}\n)", ONLINE_PROBES, on="")


def fleet_alerts(ha: HaSettings | None = None) -> list[Alert]:
    """Above the endpoints: an incident of many, and the probe's own vantage."""
    ha = ha or HaSettings()
    return [
        Alert("RunpodFleetIncident",
              f"{fleet_incident(ha)} == 1\nunless on () {OFFLINE}", "1m", "critical",
              "fleet incident on {{ $labels.scope }}: many endpoints fail together "
              "({{ $labels.cause }})",
              "A share of the endpoints behind {{ $labels.scope }} fail together with the "
              "cause {{ $labels.cause }}: one incident (RunPod's proxy, API or a region), "
              "paged once; the endpoints in it do not page on their own. "
              "`runpod-probe ledger list` shows the endpoints in its evidence.",
              "fleet-incident", FleetPanel.ENDPOINTS_BY_STATE),
        Alert("RunpodProbeOffline", f"{OFFLINE_BY_INSTANCE} == 1", "1m",
              "critical", "runpod-probe at {{ $labels.instance }} is offline: it cannot reach "
              "the outside world",
              "runpod-probe's own vantage checks (RunPod's API, DNS, reference URLs) fail at "
              "{{ $labels.instance }}: its host lost the network, so what it sees of the "
              "endpoints is unknown and has no vote; another probe of an HA pair still "
              "decides.", "probe-offline", FleetPanel.DAEMON_UP),
    ]


def rule_groups(settings: SloSettings, links: Links,
                ha: HaSettings | None = None) -> list[dict[str, Any]]:
    ha = ha or HaSettings()
    return [
        *groups(settings, ha),
        {"name": "runpod-probe-endpoints", "interval": ENDPOINTS_INTERVAL, "rules": [
            *verdict_views(ha), *(a.rule(links) for a in endpoint_alerts(settings.page_causes))]},
        {"name": "runpod-probe-burn", "interval": BURN_INTERVAL,
         "rules": [a.rule(links) for a in slo_alerts(settings)]},
        {"name": "runpod-probe-checks", "interval": CHECKS_INTERVAL, "rules": [
            *check_counts(), *(a.rule(links) for a in check_alerts())]},
        {"name": "runpod-probe-fleet", "rules": [a.rule(links) for a in fleet_alerts(ha)]},
        {"name": "runpod-probe-daemon", "rules": [a.rule(links) for a in daemon_alerts()]},
    ]

