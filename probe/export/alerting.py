"""The alert rules: one alert per endpoint and incident, the cause as a label.

Endpoint alerts read the endpoint's verdict (``runpod_probe_endpoint_state``, after the
daemon's hysteresis) and what caused it (``runpod_probe_endpoint_cause``, stable for the
episode), so a failure switching from timeout to 502 or one passing probe does not restart
the ``for`` timer, and one dead pod is one alert. Check-level and prompt alerts read
counters or time-in-state over a window, for the same reason. Every endpoint alert is
silenced while the endpoint is in a maintenance window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.export.links import EndpointPanel, FleetPanel, Links
from probe.export.recording import SLI_SELECTOR, SLIS, recording_rules
from probe.export.rules import DEGRADED, DOWN, Cause, causes_for
from probe.export.slo import BURN_WINDOWS, SloSettings

JOB = 'job="runpod-probe"'  # the scrape job name the daemon alerts expect
MEMORY_MAX_BYTES = 512 * 1024 * 1024  # the systemd unit's MemoryMax=512M
SEVERITY = {DOWN: "critical", DEGRADED: "warning"}


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


def _not_in_maintenance(expr: str) -> str:
    return f"(\n{_indent(expr)}\n)\nunless on (endpoint) runpod_probe_maintenance == 1"


def _indent(expr: str) -> str:
    return "\n".join("  " + line for line in expr.splitlines())


def _state(state: str) -> str:
    return f'max by (endpoint) (runpod_probe_endpoint_state{{state="{state}"}}) == 1'


def _cause(state: str, regex: str) -> str:
    return (f"max by (endpoint, check, outcome) (runpod_probe_endpoint_cause"
            f'{{state="{state}",outcome=~"{regex}"}}) == 1')


def cause_alert(state: str, cause: Cause) -> Alert:
    name = "RunpodEndpointDown" if state == DOWN else "RunpodEndpointDegraded"
    expr = f"{_cause(state, cause.outcome_regex)}\nand on (endpoint)\n{_state(state)}"
    return Alert(
        name, _not_in_maintenance(expr), "1m" if state == DOWN else "5m", SEVERITY[state],
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
        name, _not_in_maintenance(expr), "1m" if state == DOWN else "5m", SEVERITY[state],
        f"{{{{ $labels.endpoint }}}} is {state}",
        f"{{{{ $labels.endpoint }}}} is {state} for a cause the alert table does not name: "
        "the endpoint's cause panel and `runpod-probe ledger list` show it.",
        f"endpoint-{state}", EndpointPanel.STATE_TIMELINE, (("cause", "other"),))


def endpoint_alerts() -> list[Alert]:
    alerts = [cause_alert(state, cause) for state in (DOWN, DEGRADED)
              for cause in causes_for(state)]
    alerts += [fallback_alert(DOWN), fallback_alert(DEGRADED)]
    alerts.append(Alert(
        "RunpodEndpointUnknown", _not_in_maintenance(_state("unknown")), "15m", "warning",
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
            alerts.append(Alert(
                "RunpodErrorBudgetBurn", _not_in_maintenance("\nor\n".join(arms)), "2m",
                severity,
                f"{{{{ $labels.endpoint }}}} burns its {slo} error budget {pace}",
                f"The {slo} SLO of {{{{ $labels.endpoint }}}} ({objective} over "
                f"{settings.period}) is burning its error budget at {burns}.",
                f"slo-{slo}", EndpointPanel.BURN_RATE, (("slo", slo),)))
    return alerts


def check_alerts() -> list[Alert]:
    sel = SLI_SELECTOR
    failures = (f"sum by (endpoint, check_kind) (increase("
                f"runpod_probe_observation_failures_total{{{sel}}}[10m]))")
    observed = ("sum by (endpoint, check_kind) (increase("
                f"runpod_probe_observations_total{{{sel}}}[10m]))")
    return [
        Alert("RunpodCheckFailing", _not_in_maintenance(
            f"{failures}\n/\n{observed}\n> 0.5\nand\n{observed} >= 3"), "5m", "warning",
            "{{ $labels.endpoint }}: its {{ $labels.check_kind }} checks fail most probes",
            "More than half of the {{ $labels.check_kind }} probes of {{ $labels.endpoint }} "
            "failed over the last 10 minutes, for 5 minutes (Alertmanager's inhibition hides this "
            "while the endpoint as a whole is down).", "check-failing",
            EndpointPanel.CHECKS_PASSING),
        Alert("RunpodPromptFailing", _not_in_maintenance(
            "avg_over_time(runpod_probe_prompt_pass[15m]) < 0.5"), "5m", "warning",
            "{{ $labels.endpoint }}: governed prompt {{ $labels.prompt }} fails",
            "The answer of {{ $labels.endpoint }} to the governed prompt {{ $labels.prompt }} "
            "failed its expectation most of the last 15 minutes.",
            "prompt-failing", EndpointPanel.PROMPT_PASS),
        Alert("RunpodProbeError", _not_in_maintenance(
            'max by (endpoint, check) (avg_over_time(runpod_probe_outcome{outcome="error"}'
            "[10m])) > 0.25"), "5m", "warning",
            "runpod-probe fails internally probing {{ $labels.endpoint }} {{ $labels.check }}",
            "The {{ $labels.check }} check of {{ $labels.endpoint }} ends in `error`, a bug in "
            "runpod-probe itself: the endpoint's real state is not being observed.",
            "probe-error", EndpointPanel.PROBE_ERRORS),
        Alert("RunpodProbeStale", _not_in_maintenance(
            "min by (endpoint, check_kind) (runpod_probe_stale_at_timestamp_seconds) < time()"),
            "5m", "warning",
            "{{ $labels.endpoint }}: a {{ $labels.check_kind }} check has no result for three "
            "intervals",
            "The scheduler has not produced a {{ $labels.check_kind }} result for "
            "{{ $labels.endpoint }} in three of its intervals (plus 5 minutes): it is stalled "
            "or overloaded.", "probe-stale", EndpointPanel.LAST_PROBE_AGE),
    ]


def daemon_alerts() -> list[Alert]:
    unauthorized = ('max by (endpoint, check) (avg_over_time(runpod_probe_outcome'
                    '{check="discovery",outcome="unauthorized"}[30m])) > 0.5')
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
        Alert("RunpodDiscoveryFailing", unauthorized, "10m", "warning",
              "RunPod's API refuses discovery: the API key lacks permission",
              "Listing pods or serverless endpoints answers 401/403: the key works for the "
              "proxy but may not read the fleet. Configured endpoints are still probed.",
              "key-lacks-permission", FleetPanel.DISCOVERY_OUTCOME,
              (("cause", "key_lacks_permission"),)),
        Alert("RunpodDiscoveryFailing", f"{failing} < 0.5\nunless on (endpoint)\n{unauthorized}",
              "10m", "warning", "discovery of the RunPod fleet keeps failing",
              "Listing the fleet through RunPod's API failed most of the last 30 minutes; the "
              "last known fleet is still probed, new pods are not.",
              "discovery-failing", FleetPanel.DISCOVERY_OUTCOME, (("cause", "api_failing"),)),
    ]


def rule_groups(settings: SloSettings, links: Links) -> list[dict[str, Any]]:
    return [
        {"name": "runpod-probe-slo", "rules": recording_rules(settings)},
        {"name": "runpod-probe-endpoints",
         "rules": [a.rule(links) for a in (*endpoint_alerts(), *slo_alerts(settings),
                                           *check_alerts())]},
        {"name": "runpod-probe-daemon", "rules": [a.rule(links) for a in daemon_alerts()]},
    ]

