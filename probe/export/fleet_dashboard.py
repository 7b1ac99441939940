"""The fleet overview: what is broken now, which SLOs burn, who the worst offenders are,
and whether runpod-probe itself is healthy."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from probe.export.grafana import (
    PROBE,
    SEL,
    SLO_SEL,
    bar_panel,
    dashboard,
    histogram_quantile,
    mapping,
    pass_mapping,
    pass_steps,
    series_panel,
    stat_panel,
    state_code,
    state_mapping,
    state_panel,
    state_steps,
    steps,
    table_panel,
    to_endpoint,
)
from probe.export.links import ENDPOINT_UID, FLEET_UID, FleetPanel
from probe.export.slo import SloSettings

P = FleetPanel
MEMORY_MAX = 512 * 1024 * 1024  # the systemd unit's MemoryMax=512M
JOB = 'job=~"$job"'


def build(slo: SloSettings) -> dash.Dashboard:
    count_state = [(f'count(runpod_probe_endpoint_state{{{SEL},state="{s}"}} == 1) or vector(0)',
                    s) for s in ("down", "degraded", "unknown", "maintenance", "up")]
    drill = [to_endpoint(ENDPOINT_UID)]
    board = dashboard(FLEET_UID, "runpod-probe: fleet",
                      "Every probed RunPod endpoint at a glance; open one for its details.")
    return (
        board.with_row(dash.Row("Fleet now").id(101))
        .with_panel(stat_panel(
            P.ENDPOINTS_BY_STATE, "Endpoints by state",
            "How many endpoints are in each state (the daemon's verdict after hysteresis). "
            "Anything but 0 down or degraded needs a look.", count_state, unit="none",
            thresholds=steps("green"), mappings=mapping([(0, "none", "green")]), width=8,
            per_series={"down": steps("green", (1, "red")),
                        "degraded": steps("green", (1, "orange")),
                        "unknown": steps("green", (1, "text")),
                        "maintenance": steps("green", (1, "blue"))}))
        .with_panel(stat_panel(
            P.STATE_NOW, "Endpoint state", "Each endpoint's current state: UP green, DOWN red, "
            "DEGRADED orange, MAINTENANCE blue, UNKNOWN grey. Click one for its dashboard.",
            [(state_code(), "{{endpoint}}")], unit="none", thresholds=state_steps(),
            mappings=state_mapping(), width=16, links=drill))
        .with_panel(state_panel(
            P.STATE_TIMELINE, "State over time", "Each endpoint's state over the time range.",
            [(state_code(), "{{endpoint}}")], thresholds=state_steps(), mappings=state_mapping()))
        .with_panel(table_panel(
            P.FAILING_CHECKS, "Failing checks now", "Every check whose last result is not ok, "
            "with its outcome.", [(f'runpod_probe_outcome{{{SEL},outcome!="ok"}} == 1', "")],
            width=24))
        .with_row(dash.Row("SLOs").id(102))
        .with_panel(stat_panel(
            P.BUDGET_REMAINING, f"Availability error budget left ({slo.period})",
            f"Share of the {slo.period} error budget of the {slo.availability:g} % "
            "availability SLO still unspent: red once it is gone.",
            [(f'slo:period_error_budget_remaining:ratio{{{SLO_SEL},slo="availability"}}',
              "{{endpoint}}")], unit="percentunit",
            thresholds=steps("red", (0, "orange"), (0.25, "green")),
            mappings=mapping([]), width=12, links=drill))
        .with_panel(series_panel(
            P.BURN_RATE, "Error budget burn rate (1 h)", "How many times faster than "
            "sustainable each endpoint spends its budget over the last hour; the dashed lines "
            "are the page thresholds (14.4x over 1 h, 6x over 6 h, for 30 days).",
            [(f"slo:sli_error:ratio_rate1h{{{SLO_SEL}}}\n/ on (slo) group_left\n"
              "slo:error_budget:ratio", "{{endpoint}} {{slo}}")], unit="x",
            lines=((6, "orange"), (14.4, "red"))))
        .with_panel(bar_panel(
            P.WORST_OFFENDERS, "Worst offenders (failed observations, 1 h)",
            "The ten endpoints with the highest share of failed observations over the last "
            "hour.", [(f'topk(10, slo:sli_error:ratio_rate1h{{{SLO_SEL},slo="availability"}})',
                       "{{endpoint}}")], unit="percentunit",
            thresholds=steps("green", (0.005, "orange"), (0.072, "red")), links=drill))
        .with_panel(series_panel(
            P.RESULTS_BY_OUTCOME, "Observations and failures", "Results per second that "
            "observed the selected endpoints, and those that failed, by kind of check.",
            [(f"sum by (check_kind) (rate(runpod_probe_observations_total{{{SEL}}}"
              "[$__rate_interval]))", "{{check_kind}} observed"),
             (f"sum by (check_kind) (rate(runpod_probe_observation_failures_total{{{SEL}}}"
              "[$__rate_interval]))", "{{check_kind}} failed")], unit="ops"))
        .with_row(dash.Row("Discovery (RunPod REST API)").id(103))
        .with_panel(series_panel(
            P.DISCOVERED, "Discovered endpoints", "Endpoints discovery found and probes, and "
            "those it skipped (not running, no HTTP port, filtered), by kind.",
            [(f"runpod_probe_discovered_endpoints{{{PROBE}}}", "discovered {{kind}}"),
             (f"runpod_probe_discovery_skipped{{{PROBE}}}", "skipped {{kind}}")], unit="none"))
        .with_panel(state_panel(
            P.DISCOVERY_OUTCOME, "Discovery passing", "Whether listing the fleet through "
            "RunPod's API succeeded (a key without permission to list pods fails here).",
            [(f'runpod_probe_up{{{PROBE},check="discovery"}}', "discovery")],
            thresholds=pass_steps(), mappings=pass_mapping(), width=12))
        .with_row(dash.Row("runpod-probe itself").id(104))
        .with_panel(stat_panel(
            P.DAEMON_UP, "Daemon scraped", "Whether Prometheus scrapes runpod-probe (job "
            '"runpod-probe"). DOWN: nothing watches the endpoints.',
            [(f"up{{{JOB}}}", "{{instance}}")], unit="none", thresholds=pass_steps(),
            mappings=mapping([(0, "DOWN", "red"), (1, "UP", "green")]), width=6))
        .with_panel(stat_panel(
            P.CONFIG_RELOAD, "Last config reload", "Whether the last config reload was "
            "accepted; a refused one keeps the previous config running.",
            [(f"runpod_probe_config_last_reload_successful{{{PROBE}}}", "reload")], unit="none",
            thresholds=pass_steps(), mappings=mapping([(0, "REFUSED", "red"), (1, "OK", "green")]),
            width=6))
        .with_panel(stat_panel(
            P.LEDGER_CHAIN, "Ledger chain", "Whether the ledger's hash chain verifies; BROKEN "
            "means an entry was changed or lost, and exports stop.",
            [(f"runpod_probe_ledger_chain_valid{{{PROBE}}}", "ledger")], unit="none",
            thresholds=pass_steps(),
            mappings=mapping([(0, "BROKEN", "red"), (1, "INTACT", "green")]), width=6))
        .with_panel(series_panel(
            P.LEDGER_ERRORS, "Ledger and LEARNING.md errors", "Failed ledger writes and failed "
            "LEARNING.md appends; any is a lost finding.",
            [(f"increase(runpod_probe_ledger_write_errors_total{{{PROBE}}}[$__rate_interval])",
              "ledger writes"),
             (f"increase(runpod_probe_learning_append_errors_total{{{PROBE}}}"
              "[$__rate_interval])",
              "LEARNING.md appends")], unit="none", width=6, lines=((1, "red"),)))
        .with_panel(series_panel(
            P.MEMORY, "Memory", "Resident memory of the daemon against the unit's "
            "MemoryMax=512M (red line); the alert fires at 80 %.",
            [(f"process_resident_memory_bytes{{{PROBE}}}", "resident")], unit="bytes", width=6,
            lines=((0.8 * MEMORY_MAX, "orange"), (MEMORY_MAX, "red"))))
        .with_panel(series_panel(
            P.SCHEDULER_LAG, "Scheduler lag p99", "How late checks start against their "
            "schedule; growing lag means the daemon is overloaded.",
            [(histogram_quantile(0.99, "runpod_probe_scheduler_lag_seconds", "", PROBE),
              "p99")],
            unit="s", width=6))
        .with_panel(series_panel(
            P.IN_FLIGHT, "Checks in flight", "Checks running at once.",
            [(f"runpod_probe_probes_in_flight{{{PROBE}}}", "in flight")], unit="none", width=6))
        .with_panel(series_panel(
            P.STORE, "Results store", "Results waiting for SQLite, failed writes (retried) and "
            "results dropped when the queue overflowed.",
            [(f"runpod_probe_store_pending_results{{{PROBE}}}", "pending"),
             (f"increase(runpod_probe_store_errors_total{{{PROBE}}}[$__rate_interval])",
              "errors"),
             (f"increase(runpod_probe_store_dropped_total{{{PROBE}}}[$__rate_interval])",
              "dropped")],
            unit="none", width=6))
    )
