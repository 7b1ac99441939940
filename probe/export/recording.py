"""Recording rules for the per-endpoint SLIs (Sloth's names, ``slo`` label per SLI), in
three groups so that no evaluation reads the raw counters over a long window.

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
The latency histogram is read in either form a Prometheus stores it (``latency_form``): the
classic buckets (``_bucket{le=...}``, ``_count``) or, from a Prometheus with
``--enable-feature=native-histograms`` that keeps only the native histogram, its
``histogram_count`` and ``histogram_fraction`` up to the threshold. Each form is summed per
endpoint and probe first, then ``or``-ed: the label sets match, so a Prometheus that keeps
both counts the classic ones once and never adds the native ones.

How the windows scale (as Sloth's optimised rules and Pyrra do): only the 5-minute rates
of bad and all events read the raw counters, once per endpoint and SLI
(``slo:sli_bad_events:rate5m``, ``slo:sli_events:rate5m``). Every longer window is a sum of
those recorded rates over the window, a ratio of sums (weighted by events, not an average
of ratios):

- ``runpod-probe-slo`` (every ``RATES_INTERVAL``): the 5m rates and the 5m ratio;
- ``runpod-probe-slo-windows`` (every ``WINDOWS_INTERVAL``): the 30m and 1h ratios;
- ``runpod-probe-slo-long`` (every ``LONG_INTERVAL``): a copy of the 5m rates taken at that
  pace (``..._sampled``), the running total of the events and the checks every guard reads
  (``slo:sli_events:total_sampled``, ``slo:sli_checks:count``), the 2h, 6h, 1d and 3d
  ratios summed from the copy (a 3d window reads 1,728 samples per endpoint and SLI
  instead of every scrape of every series), and the minimum-sample guard of each burn
  alert's long window (1h to 3d; no other window's guard is recorded);
- ``runpod-probe-slo-period`` (every ``PERIOD_INTERVAL``): hourly averages of the copy and
  the period's (30d) ratio from them, 720 samples; the long group reads it back with
  ``last_over_time`` (the budget remaining), as its hourly samples are older than
  Prometheus's 5-minute lookback between evaluations.

Rates, totals and ratios are each probe's (``instance``, of an HA pair); a window's recorded
ratio is the quorum's of them (``probe.export.ha``). Results a probe gathered while it was
offline (``runpod_probe_offline``) are not the endpoint's events. The minimum-sample guard
(``slo:sli_events_per_check:increase<w>``) is the ``increase`` over the window of a recorded
running total of the events (``slo:sli_events:total_sampled``, every ``LONG_INTERVAL``), per
check.
"""

from __future__ import annotations

from typing import Any

from probe.durations import parse_duration
from probe.export.ha import HaSettings
from probe.export.rules import ticket_outcomes
from probe.export.slo import BURN_WINDOWS, SloSettings, bucket_label
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
SHORT_WINDOWS = ("30m", "1h")  # from the 5m rates, in their own group
LONG_WINDOWS = ("2h", "6h", "1d", "3d")  # from the sampled copy
# Each group's pace (as Pyrra's: 30s for the burn rates, 2m30s for the long increases): the
# 5m rates and ratio every 30s, the 30m and 1h ratios every minute (a 1h window moves by a
# minute's 1.7 % in a minute), the long windows every 2m30s, the period every hour.
RATES_INTERVAL = "30s"
WINDOWS_INTERVAL = "1m"
LONG_INTERVAL = "2m30s"  # under Prometheus's 5m lookback: the copy is never stale
PERIOD_INTERVAL = "1h"
# The windows whose minimum-sample guard a burn alert reads (its long window): no other
# window's is recorded.
GUARDED = {w.long for w in BURN_WINDOWS}
# A probe cut off from the world: what it gathered then is not about the endpoints.
ONLINE = "unless on (instance) runpod_probe_offline == 1"
LATENCY = "runpod_probe_latency_seconds"
PER_PROBE = "sum by (endpoint, instance)"


def _online(expr: str) -> str:
    """Per endpoint and probe, summed before the offline probes are left out: the join
    then matches one series per endpoint, not every raw series."""
    return f"(\n  {expr}\n  {ONLINE}\n)"


def _rate(metric: str, selector: str) -> str:
    return _online(f"{PER_PROBE} (rate({metric}{{{selector}}}[5m]))")


def latency_form(classic: str, native: str, indent: str = "  ") -> str:
    """The classic histogram's sum per endpoint and probe, or the native one's where a
    Prometheus keeps only that: both are aggregated to the same labels first, so ``or``
    adds a native sum only where no classic one exists (never both for one endpoint)."""
    arms = f"\n{indent}  or\n{indent}  ".join(f"{PER_PROBE} ({arm})" for arm in (classic, native))
    return f"(\n{indent}  {arms}\n{indent})"


def _native_rate() -> str:
    return f"rate({LATENCY}{{{LATENCY_SELECTOR}}}[5m])"


def latency_events() -> str:
    """The API checks per second: ``_count``, or the native histogram's count."""
    return latency_form(f"rate({LATENCY}_count{{{LATENCY_SELECTOR}}}[5m])",
                        f"histogram_count({_native_rate()})")


def latency_fast_events(threshold_s: float) -> str:
    """The API checks per second that finished within ``threshold_s``: its bucket, or the
    native histogram's fraction up to it times its count. A histogram without observations
    in the window has a NaN fraction: 0 instead (``>= 0 or ... * 0``), as its bucket says."""
    fast = f'{LATENCY_SELECTOR},le="{bucket_label(threshold_s)}"'
    rate = _native_rate()
    native = (f"(histogram_fraction(0, {threshold_s:g}, {rate}) * histogram_count({rate})) "
              f">= 0\n      or histogram_count({rate}) * 0")
    return latency_form(f"rate({LATENCY}_bucket{{{fast}}}[5m])", native)


def bad_events(slo: str, settings: SloSettings) -> str:
    """Bad events per second over 5m, per endpoint (0, not absent, with none). All events
    are read from their recording (``slo:sli_events:rate5m``, recorded just before in the
    same group), not from the raw counters a second time."""
    events = f'slo:sli_events:rate5m{{slo="{slo}"}}'
    if slo == "availability":
        failed = f'{SLI_SELECTOR},outcome!~"{availability_ignores(settings)}"'
        return (f"{_rate('runpod_probe_failures_by_outcome_total', failed)}\n"
                f"or on (endpoint, instance)\n{events} * 0")
    # events - fast can be -1e-7 from float rounding: 0, not a negative count (which the
    # ratio's ``>= 0`` would drop, leaving a healthy endpoint's ratio absent)
    return (f"clamp_min(\n{events}\n- on (endpoint, instance)\n"
            f"{_online(latency_fast_events(settings.latency_threshold_s))},\n0)")


def all_events(slo: str) -> str:
    if slo == "latency":
        return _online(latency_events())
    return _rate("runpod_probe_observations_total", SLI_SELECTOR)


def running_total(slo: str) -> str:
    """All events so far (a sum of counters, read back with ``increase``): the native
    histogram's count is the same number as ``_count``, so a Prometheus switched from one
    form to the other sees no jump."""
    if slo == "latency":
        return latency_form(f"{LATENCY}_count{{{LATENCY_SELECTOR}}}",
                            f"histogram_count({LATENCY}{{{LATENCY_SELECTOR}}})", indent="")
    return f"{PER_PROBE} (runpod_probe_observations_total{{{SLI_SELECTOR}}})"


def checks(slo: str) -> str:
    """The checks whose events an endpoint's SLI counts (``runpod_probe_up``: per check), per
    probe."""
    return f"count by (endpoint, instance) (runpod_probe_up{{{CHECKS[slo]}}})"


def availability_ignores(settings: SloSettings) -> str:
    """The outcomes of ``runpod_probe_failures_by_outcome_total`` that are not availability's
    bad events: results that did not observe the endpoint, and the ticket causes'."""
    return "|".join((*sorted(NOT_OBSERVED), *ticket_outcomes(settings.page_causes)))


def _seconds(window: str) -> int:
    return round(parse_duration(window))


def _ratio(slo: str, window: str, rates: str, ha: HaSettings) -> str:
    """Bad / all events summed over ``window`` of the recorded rates ``rates`` (a name
    suffix), each probe's, then the quorum's; ``>= 0`` drops the NaN of a window without
    events."""
    s = f'{{slo="{slo}"}}'
    if window == "5m" and rates == "rate5m":
        ratio = f"(slo:sli_bad_events:rate5m{s} / slo:sli_events:rate5m{s}) >= 0"
    else:
        ratio = (f"(\n  sum_over_time(slo:sli_bad_events:{rates}{s}[{window}])\n/\n"
                 f"  sum_over_time(slo:sli_events:{rates}{s}[{window}])\n) >= 0")
    return ha.aggregate(ratio, "endpoint")


def _per_check(slo: str, window: str, total: str, ha: HaSettings) -> str:
    """Events per check in ``window``: the increase of the recorded running total ``total``
    (young data is not extrapolated, so a fresh start does not pass the guard), each
    probe's, then the quorum's."""
    s = f'{{slo="{slo}"}}'
    return ha.aggregate(f"increase(slo:sli_events:{total}{s}[{window}])\n/\n"
                        f"slo:sli_checks:count{s}", "endpoint")


def _windows(slo: str, windows: tuple[str, ...], rates: str,
             ha: HaSettings) -> list[dict[str, Any]]:
    labels = {"slo": slo}
    return [{"record": f"slo:sli_error:ratio_rate{window}",
             "expr": _ratio(slo, window, rates, ha), "labels": labels} for window in windows]


def _guards(slo: str, ha: HaSettings) -> list[dict[str, Any]]:
    """The minimum-sample guard of every window a burn alert reads as its long one."""
    labels = {"slo": slo}
    return [{"record": f"slo:sli_events_per_check:increase{window}",
             "expr": _per_check(slo, window, "total_sampled", ha), "labels": labels}
            for window in (*SHORT_WINDOWS, *LONG_WINDOWS) if window in GUARDED]


def recording_rules(settings: SloSettings, ha: HaSettings) -> list[dict[str, Any]]:
    """The group evaluated every ``RATES_INTERVAL``: 5m rates, the burn rate now."""
    rules: list[dict[str, Any]] = []
    for slo in SLIS:
        labels = {"slo": slo}
        rules += [
            {"record": "slo:objective:ratio", "expr": f"vector({settings.objective(slo)})",
             "labels": labels},
            {"record": "slo:error_budget:ratio", "expr": f"vector({settings.budget(slo)})",
             "labels": labels},
            {"record": "slo:sli_events:rate5m", "expr": all_events(slo), "labels": labels},
            {"record": "slo:sli_bad_events:rate5m", "expr": bad_events(slo, settings),
             "labels": labels},
        ]
        rules += _windows(slo, ("5m",), "rate5m", ha)
    return rules


def window_rules(settings: SloSettings, ha: HaSettings) -> list[dict[str, Any]]:
    """The group evaluated every ``WINDOWS_INTERVAL``: the 30m and 1h windows of the 5m
    rates (the last values the rates group recorded)."""
    rules: list[dict[str, Any]] = []
    for slo in SLIS:
        rules += _windows(slo, SHORT_WINDOWS, "rate5m", ha)
    return rules


def long_rules(settings: SloSettings, ha: HaSettings) -> list[dict[str, Any]]:
    """The group evaluated every ``LONG_INTERVAL``: the sampled copy and the long windows."""
    rules: list[dict[str, Any]] = []
    for slo in SLIS:
        labels = {"slo": slo}
        s = f'{{slo="{slo}"}}'
        rules += [
            {"record": "slo:sli_bad_events:rate5m_sampled",
             "expr": f"slo:sli_bad_events:rate5m{s}", "labels": labels},
            {"record": "slo:sli_events:rate5m_sampled", "expr": f"slo:sli_events:rate5m{s}",
             "labels": labels},
            # Read by every guard (the 1h one's too): the running total and the checks
            # change slowly, and each reads every raw series of its metric.
            {"record": "slo:sli_events:total_sampled", "expr": running_total(slo),
             "labels": labels},
            {"record": "slo:sli_checks:count", "expr": checks(slo), "labels": labels},
        ]
        rules += _windows(slo, LONG_WINDOWS, "rate5m_sampled", ha)
        rules += _guards(slo, ha)
    rules.append(
        {"record": "slo:period_error_budget_remaining:ratio",
         "expr": f"1 - last_over_time(slo:sli_error:ratio_rate{settings.period}"
                 f"[{2 * _seconds(PERIOD_INTERVAL)}s])\n/ on (slo) group_left\n"
                 "slo:error_budget:ratio"})
    return rules


def period_rules(settings: SloSettings, ha: HaSettings) -> list[dict[str, Any]]:
    """The group evaluated every ``PERIOD_INTERVAL``: the error budget's period."""
    rules: list[dict[str, Any]] = []
    for slo in SLIS:
        labels = {"slo": slo}
        s = f'{{slo="{slo}"}}'
        for kind in ("bad_events", "events"):
            rules.append({"record": f"slo:sli_{kind}:rate1h_hourly",
                          "expr": f"avg_over_time(slo:sli_{kind}:rate5m_sampled{s}[1h])",
                          "labels": labels})
        rules.append({"record": f"slo:sli_error:ratio_rate{settings.period}",
                      "expr": _ratio(slo, settings.period, "rate1h_hourly", ha),
                      "labels": labels})
    return rules


def groups(settings: SloSettings, ha: HaSettings) -> list[dict[str, Any]]:
    return [
        {"name": "runpod-probe-slo", "interval": RATES_INTERVAL,
         "rules": recording_rules(settings, ha)},
        {"name": "runpod-probe-slo-windows", "interval": WINDOWS_INTERVAL,
         "rules": window_rules(settings, ha)},
        {"name": "runpod-probe-slo-long", "interval": LONG_INTERVAL,
         "rules": long_rules(settings, ha)},
        {"name": "runpod-probe-slo-period", "interval": PERIOD_INTERVAL,
         "rules": period_rules(settings, ha)},
    ]
