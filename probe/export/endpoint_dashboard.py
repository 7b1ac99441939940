"""One endpoint in detail: its verdict and cause, its SLOs, every check, its prompts, and
the engine or queue behind it. Alerts link here with ``var-endpoint`` and ``viewPanel``."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from probe.export.grafana import (
    SEL,
    SLO_SEL,
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
)
from probe.export.links import ENDPOINT_UID, EndpointPanel
from probe.export.slo import SloSettings

P = EndpointPanel


def _quantiles(metric: str, by: str, legend: str, where: str = "") -> list[tuple[str, str]]:
    sel = f"{SEL},{where}" if where else SEL
    return [(histogram_quantile(q, metric, by, sel), f"p{int(q * 100)} {legend}")
            for q in (0.5, 0.95)]


def build(slo: SloSettings) -> dash.Dashboard:
    ratio = f"{slo.availability / 100:g}"
    board = dashboard(ENDPOINT_UID, "runpod-probe: endpoint",
                      "One endpoint's verdict, SLOs, checks, prompts and engine or queue.")
    return (
        board.with_row(dash.Row("Verdict").id(101))
        .with_panel(stat_panel(
            P.STATE, "State", "The endpoint's state after hysteresis: UP, DOWN, DEGRADED "
            "(serves, but governed answers fail), MAINTENANCE or UNKNOWN (cannot be observed).",
            [(state_code(), "{{endpoint}}")], unit="none", thresholds=state_steps(),
            mappings=state_mapping(), width=8))
        .with_panel(table_panel(
            P.CAUSE, "Cause", "What put the endpoint into its current state: the check and its "
            "outcome. Empty while up.",
            [(f"runpod_probe_endpoint_cause{{{SEL}}} == 1", "")], width=10, height=5))
        .with_panel(stat_panel(
            P.MAINTENANCE, "Maintenance window", "IN MAINTENANCE silences every alert of the "
            "endpoint.", [(f"runpod_probe_maintenance{{{SEL}}}", "{{endpoint}}")], unit="none",
            thresholds=steps("green", (1, "blue")),
            mappings=mapping([(0, "NO", "green"), (1, "IN MAINTENANCE", "blue")]), width=6))
        .with_panel(state_panel(
            P.STATE_TIMELINE, "State over time", "The endpoint's state over the time range; "
            "endpoint alerts open this panel.", [(state_code(), "{{endpoint}}")],
            thresholds=state_steps(), mappings=state_mapping(), height=6))
        .with_row(dash.Row("SLOs").id(102))
        .with_panel(stat_panel(
            P.AVAILABILITY, "Availability (1 h)", f"Share of observations that passed over the "
            f"last hour; the objective is {slo.availability:g} %.",
            [(f'1 - slo:sli_error:ratio_rate1h{{{SLO_SEL},slo="availability"}}', "{{endpoint}}")],
            unit="percentunit", thresholds=steps("red", (float(ratio), "green")),
            mappings=mapping([]), width=6))
        .with_panel(stat_panel(
            P.LATENCY_SLI, f"Checks under {slo.latency_threshold_s:g}s (1 h)",
            f"Share of the API checks (not round trips or prompts) that finished within "
            f"{slo.latency_threshold_s:g}s over the last hour; the objective is "
            f"{slo.latency:g} %.",
            [(f'1 - slo:sli_error:ratio_rate1h{{{SLO_SEL},slo="latency"}}', "{{endpoint}}")],
            unit="percentunit", thresholds=steps("red", (slo.latency / 100, "green")),
            mappings=mapping([]), width=6))
        .with_panel(stat_panel(
            P.BUDGET_REMAINING, f"Error budget left ({slo.period})", "Share of the period's "
            "error budget still unspent, per SLO; red once it is gone.",
            [(f"slo:period_error_budget_remaining:ratio{{{SLO_SEL}}}", "{{slo}}")],
            unit="percentunit", thresholds=steps("red", (0, "orange"), (0.25, "green")),
            mappings=mapping([]), width=12))
        .with_panel(series_panel(
            P.BURN_RATE, "Burn rate by window", "Error budget burn rate per SLO over the alert "
            "windows; a page needs both a long and its short window over the dashed line "
            "(14.4x for 1 h/5 m, 6x for 6 h/30 m).",
            [(f"slo:sli_error:ratio_rate{w}{{{SLO_SEL}}}\n/ on (slo) group_left\n"
              "slo:error_budget:ratio", f"{{{{slo}}}} {w}") for w in ("5m", "1h", "6h")],
            unit="x", width=24, lines=((6, "orange"), (14.4, "red"))))
        .with_row(dash.Row("Checks").id(103))
        .with_panel(state_panel(
            P.CHECKS_PASSING, "Checks passing", "Each check's last result over time: PASS or "
            "FAIL (never-probed and unknown count as FAIL).",
            [(f"runpod_probe_up{{{SEL}}}", "{{check}}")], thresholds=pass_steps(),
            mappings=pass_mapping(), width=12))
        .with_panel(table_panel(
            P.OUTCOME_NOW, "Outcome now", "Each check's current outcome.",
            [(f"runpod_probe_outcome{{{SEL}}} == 1", "")]))
        .with_panel(series_panel(
            P.LATENCY, "API latency p50 / p95", "Duration of the last attempt of the checks "
            "that ask the endpoint's API (models, health, metrics, queue), median and 95th "
            f"percentile; the latency SLO counts those under {slo.latency_threshold_s:g}s.",
            _quantiles("runpod_probe_latency_seconds", "check_kind", "{{check_kind}}",
                       'check_kind="api"'), unit="s",
            lines=((slo.latency_threshold_s, "orange"),)))
        .with_panel(series_panel(
            P.PROBE_ERRORS, "Probe errors (runpod-probe bugs)", "Checks whose last result "
            "ended in `error`: runpod-probe itself failed, the endpoint was not observed.",
            # "or ... * 0": no error is a 0 per check, not "No data"
            [(f'sum by (check) (runpod_probe_outcome{{{SEL},outcome="error"}})'
              f"\nor\nsum by (check) (runpod_probe_up{{{SEL}}}) * 0",
              "{{check}}")], unit="none", width=6))
        .with_panel(series_panel(
            P.LAST_PROBE_AGE, "Time left before a check is stale", "Seconds until the first "
            "check of each kind has gone three intervals (plus 5 minutes) without a result; "
            "the stale alert fires below 0 (dashed line).",
            [(f"runpod_probe_stale_at_timestamp_seconds{{{SEL}}} - time()", "{{check_kind}}")],
            unit="s", width=6, lines=((0, "red"),)))
        .with_panel(series_panel(
            P.FAILURES, "Failed observations per hour", "Results that observed the endpoint "
            "and failed, per kind of check.",
            [(f"increase(runpod_probe_observation_failures_total{{{SEL}}}[1h])",
              "{{check_kind}}")], unit="none", width=6))
        .with_panel(series_panel(
            P.OBSERVATIONS, "Observations per hour", "Results that observed the endpoint, per "
            "kind of check (unknown, rate-limited, skipped and error results do not count).",
            [(f"increase(runpod_probe_observations_total{{{SEL}}}[1h])", "{{check_kind}}")],
            unit="none", width=6))
        .with_row(dash.Row("Governed prompts").id(104))
        .with_panel(stat_panel(
            P.PROMPT_PASS, "Prompt passing", "Whether each governed prompt's last answer met "
            "its expectation.", [(f"runpod_probe_prompt_pass{{{SEL}}}", "{{prompt}}")],
            unit="none", thresholds=pass_steps(), mappings=pass_mapping(), width=6, height=8))
        .with_panel(series_panel(
            P.GENERATION_LATENCY, "Generation latency p50 / p95", "Total time of the checks "
            "that wait for generated tokens or a job (governed prompts, round trips, the "
            "active context probe). Per prompt TTFT and decode rate: `metrics: {per_check: "
            "true}`.", _quantiles("runpod_probe_latency_seconds", "check_kind",
                                   "{{check_kind}}", 'check_kind="generation"'),
            unit="s", width=12))
        .with_panel(series_panel(
            P.TOKENS_SPENT, "Tokens spent by probing (per hour)", "Prompt and completion "
            "tokens the probes spent.",
            [(f"sum by (type) (increase(runpod_probe_tokens_spent_total{{{SEL}}}[1h]))",
              "{{type}}")], unit="suffix: tokens", width=6))
        .with_row(dash.Row("vLLM engine (pods)").id(105))
        .with_panel(series_panel(
            P.ENGINE_QUEUE, "Requests waiting / running", "vLLM's queue depth and batch, "
            "summed over engines.",
            [(f"runpod_probe_vllm_requests_waiting{{{SEL}}}", "waiting"),
             (f"runpod_probe_vllm_requests_running{{{SEL}}}", "running")], unit="none",
            width=6))
        .with_panel(series_panel(
            P.KV_CACHE, "KV-cache usage", "KV-cache usage of the fullest engine.",
            [(f"runpod_probe_vllm_kv_cache_usage_ratio{{{SEL}}}", "{{endpoint}}")],
            unit="percentunit", width=6, lines=((0.9, "orange"),)))
        .with_panel(series_panel(
            P.GENERATION_RATE, "Generated tokens/s (all traffic)", "Tokens the engine "
            "generated per second between the last two scrapes, for everyone's requests.",
            [(f"rate(runpod_probe_vllm_generation_tokens_total{{{SEL}}}[$__rate_interval])",
              "{{endpoint}}")],
            unit="suffix: tok/s", width=6))
        .with_panel(series_panel(
            P.MAX_MODEL_LEN, "Context window (max_model_len)", "The context length the pod "
            "reports; payloads over it are truncated or refused.",
            [(f"runpod_probe_max_model_len{{{SEL}}}", "{{model}}")], unit="suffix: tokens",
            width=6))
        .with_row(dash.Row("Serverless queue").id(106))
        .with_panel(series_panel(
            P.JOBS, "Jobs by state", "The endpoint's jobs from its /health, by state.",
            [(f"runpod_probe_serverless_jobs{{{SEL}}}", "{{state}}")], unit="none", width=6))
        .with_panel(series_panel(
            P.WORKERS, "Workers by state", "The endpoint's workers from its /health, by "
            "state; jobs waiting with no running worker is the crash-loop signature.",
            [(f"runpod_probe_serverless_workers{{{SEL}}}", "{{state}}")], unit="none",
            width=6))
        .with_panel(series_panel(
            P.ROUNDTRIP_DELAY, "Round trip: queue + cold start p95", "Time a probe job waited "
            "before a worker took it, cold or warm start.",
            [(histogram_quantile(0.95, "runpod_probe_serverless_delay_seconds", "start", SEL),
              "{{start}}")], unit="s", width=6))
        .with_panel(series_panel(
            P.ROUNDTRIP_TOTAL, "Round trip total p95", "Submit to result of the probe job.",
            [(histogram_quantile(0.95, "runpod_probe_serverless_roundtrip_seconds", "start",
                                 SEL), "{{start}}")], unit="s", width=6))
    )
