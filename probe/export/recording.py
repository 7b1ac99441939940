"""Recording rules for the per-endpoint SLIs (Sloth's names, ``slo`` label per SLI).

Availability: of the results that observed the endpoint, the share that failed for a cause
that pages (``probe.export.rules.tier``): an endpoint that answers wrongly (a wrong answer,
a context too small, another model) opens tickets and does not burn availability, unless
``slo.page_causes`` lists its cause. The bad events are read from
``runpod_probe_failures_by_outcome_total`` (results that were not ok), leaving out the
outcomes that did not observe the endpoint; an outcome's series starts at its first result
(so ``rate`` misses that one: one event per outcome and restart), and ``or`` the
observations times 0 makes a healthy endpoint's SLI 0, not absent.
Latency: of the checks that ask the API (``check_kind="api"``, not generation), the share
slower than the SLO's threshold (a histogram bucket). Both read series kept per endpoint and
kind of check; the events per check divide by the checks ``runpod_probe_up`` counts.
Each window is recorded once so the burn-rate alerts and the dashboards stay cheap.
"""

from __future__ import annotations

from typing import Any

from probe.export.rules import ticket_outcomes
from probe.export.slo import WINDOWS, SloSettings, bucket_label
from probe.outcome import NOT_OBSERVED

# discovery is runpod-probe's own call to RunPod's API, not an endpoint anyone serves from
SLI_SELECTOR = 'check_kind!="discovery"'
# Round trips, prompts and the active context check time generation (and cold starts),
# which have their own limits; the latency SLO is about the API answering.
LATENCY_SELECTOR = 'check_kind="api"'
# The same checks, by name (``runpod_probe_up`` has one series per check).
CHECKS = {"availability": 'check!="discovery"',
          "latency": 'check!~"discovery|roundtrip|context_active|prompt:.+"'}
SLIS = ("availability", "latency")


def error_ratio(slo: str, window: str, settings: SloSettings) -> str:
    """Bad events / all events over ``window``, per endpoint; ``>= 0`` drops the NaN of a
    window without events, which would otherwise poison the period's average."""
    sel = SLI_SELECTOR
    if slo == "availability":
        total = f"sum by (endpoint) (rate(runpod_probe_observations_total{{{sel}}}[{window}]))"
        failed = f'{sel},outcome!~"{availability_ignores(settings)}"'
        bad = (f"sum by (endpoint) (rate(runpod_probe_failures_by_outcome_total"
               f"{{{failed}}}[{window}]))\n  or\n  {total} * 0")
        return f"(\n  (\n  {bad}\n  )\n/\n  {total}\n) >= 0"
    le = bucket_label(settings.latency_threshold_s)
    sel = LATENCY_SELECTOR
    total = f"sum by (endpoint) (rate(runpod_probe_latency_seconds_count{{{sel}}}[{window}]))"
    good = (f"sum by (endpoint) (rate(runpod_probe_latency_seconds_bucket{{{sel},le=\"{le}\"}}"
            f"[{window}]))")
    return f"(\n  1 - {good}\n/\n  {total}\n) >= 0"


def availability_ignores(settings: SloSettings) -> str:
    """The outcomes of ``runpod_probe_failures_by_outcome_total`` that are not availability's
    bad events: results that did not observe the endpoint, and the ticket causes'."""
    return "|".join((*sorted(NOT_OBSERVED), *ticket_outcomes(settings.page_causes)))


def events_per_check(slo: str, window: str) -> str:
    """Observations per check in ``window``: the minimum-sample guard of the burn alerts."""
    sel = SLI_SELECTOR if slo == "availability" else LATENCY_SELECTOR
    metric = ("runpod_probe_observations_total" if slo == "availability"
              else "runpod_probe_latency_seconds_count")
    return (f"sum by (endpoint) (increase({metric}{{{sel}}}[{window}]))\n/\n"
            f"count by (endpoint) (runpod_probe_up{{{CHECKS[slo]}}})")


def recording_rules(settings: SloSettings) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for slo in SLIS:
        labels = {"slo": slo}
        rules.append({"record": "slo:objective:ratio",
                      "expr": f"vector({settings.objective(slo)})", "labels": labels})
        rules.append({"record": "slo:error_budget:ratio",
                      "expr": f"vector({settings.budget(slo)})", "labels": labels})
        for window in WINDOWS:
            rules.append({"record": f"slo:sli_error:ratio_rate{window}",
                          "expr": error_ratio(slo, window, settings), "labels": labels})
            rules.append({"record": f"slo:sli_events_per_check:increase{window}",
                          "expr": events_per_check(slo, window), "labels": labels})
    rules += [
        {"record": "slo:current_burn_rate:ratio",
         "expr": "slo:sli_error:ratio_rate5m\n/ on (slo) group_left\nslo:error_budget:ratio"},
        {"record": f"slo:sli_error:ratio_rate{settings.period}",
         "expr": f"sum_over_time(slo:sli_error:ratio_rate5m[{settings.period}])\n/\n"
                 f"count_over_time(slo:sli_error:ratio_rate5m[{settings.period}])"},
        {"record": "slo:period_error_budget_remaining:ratio",
         "expr": f"1 - slo:sli_error:ratio_rate{settings.period}\n/ on (slo) group_left\n"
                 "slo:error_budget:ratio"},
    ]
    return rules
