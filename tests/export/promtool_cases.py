"""promtool unit tests for the shipped rules, written as scenarios of input series.

Every endpoint alert gets a case that fires it and a twin in a maintenance window that
stays silent; and two fleet-wide cases assert that nothing at all fires for a healthy
endpoint, nor for one whose every signal has a single bad probe. Expected annotations are
the rule's own, with the alert's labels filled in. The series have the exporter's shape
(recorded in tests/data/recordings): ``runpod_probe_outcome`` only for the current
outcome, ``runpod_probe_failures_by_outcome_total`` from an outcome's first failed
result. The cases built from recorded output are in test_recorded_rules.py.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from helpers import tool

from probe.export.files import ALERTS_FILE

ROOT = Path(__file__).parents[2]

STATES = ("up", "degraded", "down", "maintenance", "unknown")
STEPS = 240  # minutes of input; long enough for the slow (ticket) burn windows


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def steps(values: list[float | None]) -> str:
    return " ".join("_" if v is None else f"{v:g}" for v in values)


def constant(value: float, count: int = STEPS) -> str:
    return f"{value:g}x{count}"


def counter(per_minute: float, count: int = STEPS) -> str:
    return f"0+{per_minute:g}x{count}"


def state(endpoint: str, timeline: list[str]) -> list[dict[str, str]]:
    """``runpod_probe_endpoint_state`` from the current state per minute: one series per state
    it is in at some minute, present (1) only while it is the current one."""
    return [series("runpod_probe_endpoint_state",
                   " ".join("1" if s == name else "_" for s in timeline),
                   endpoint=endpoint, state=name) for name in STATES if name in timeline]


def healthy_endpoint(endpoint: str, glitch_at: int | None = None) -> list[dict[str, str]]:
    """Every signal of a healthy pod, probed twice a minute; ``glitch_at``: the minute at
    which one probe of every check fails once (the endpoint's verdict stays up)."""
    def gauge(good: float, bad: float) -> str:
        return steps([bad if i == glitch_at else good for i in range(STEPS + 1)])

    def count(per_minute: float, failed: int) -> str:
        total, out = 0.0, []
        for i in range(STEPS + 1):
            out.append(total)
            total += per_minute
            if i == glitch_at:
                total += failed - per_minute if failed else 0
        return steps(out)

    failures = [0.0 if glitch_at is None or i <= glitch_at else 1.0 for i in range(STEPS + 1)]
    return [
        *state(endpoint, ["up"] * (STEPS + 1)),
        series("runpod_probe_maintenance", constant(0), endpoint=endpoint),
        series("runpod_probe_observations_total", counter(2), endpoint=endpoint,
               check_kind="api"),
        series("runpod_probe_observation_failures_total", steps(failures), endpoint=endpoint,
               check_kind="api"),
        series("runpod_probe_latency_seconds_count", counter(2), endpoint=endpoint,
               check_kind="api"),
        series("runpod_probe_latency_seconds_bucket", count(2, 1), endpoint=endpoint,
               check_kind="api", le="2.5"),
        series("runpod_probe_up", gauge(1, 0), endpoint=endpoint, check="models"),
        series("runpod_probe_outcome", only_at(glitch_at, True), endpoint=endpoint,
               check="models", outcome="error"),
        series("runpod_probe_failures_by_outcome_total", first_from(glitch_at),
               endpoint=endpoint, check_kind="api", outcome="error"),
        series("runpod_probe_failures_by_outcome_total", first_from(glitch_at),
               endpoint=endpoint, check_kind="api", outcome="http_502"),
        series("runpod_probe_prompt_pass", gauge(1, 0), endpoint=endpoint, prompt="arithmetic"),
        # the last result + 3 intervals of a minute + 5 minutes
        series("runpod_probe_stale_at_timestamp_seconds",
               steps([60.0 * (i - 1 if i == glitch_at else i) + 480 for i in range(STEPS + 1)]),
               endpoint=endpoint, check_kind="api"),
    ]


def only_at(minute: int | None, there: bool) -> str:
    """A current-outcome gauge: 1 at ``minute`` (``there``) or everywhere else, else absent
    (``stale`` when it leaves, as Prometheus marks a series that left the scrape)."""
    out = []
    for i in range(STEPS + 1):
        present = (i == minute) == there
        out.append("1" if present else ("stale" if out and out[-1] == "1" else "_"))
    return " ".join(out)


def first_from(minute: int | None) -> str:
    """A failing outcome's counter: absent until its first result at ``minute``, then 1."""
    return " ".join("_" if minute is None or i < minute else "1" for i in range(STEPS + 1))


def healthy_daemon(glitch_at: int | None = None) -> list[dict[str, str]]:
    def gauge(good: float, bad: float) -> str:
        return steps([bad if i == glitch_at else good for i in range(STEPS + 1)])

    job = {"job": "runpod-probe", "instance": "127.0.0.1:9464"}
    return [
        series("up", gauge(1, 0), **job),
        series("runpod_probe_build_info", constant(1), version="0.1.0", **job),
        series("runpod_probe_store_errors_total", steps(
            [float(glitch_at is not None and i >= glitch_at) for i in range(STEPS + 1)]), **job),
        series("runpod_probe_config_last_reload_successful", constant(1), **job),
        series("runpod_probe_ledger_chain_valid", constant(1), **job),
        series("runpod_probe_ledger_write_errors_total", constant(0), **job),
        series("runpod_probe_learning_append_errors_total", constant(0), **job),
        series("process_resident_memory_bytes",
               gauge(150 * 2**20, 480 * 2**20), **job),
        series("runpod_probe_up", gauge(1, 0), endpoint="runpod-api", check="discovery"),
        series("runpod_probe_outcome", only_at(glitch_at, True), endpoint="runpod-api",
               check="discovery", outcome="unauthorized"),
        series("runpod_probe_offline", constant(0), **job),
    ]


class Expect:
    """Renders a rule's annotations for the labels an alert will carry."""

    def __init__(self, rules: dict[str, Any]) -> None:
        self.alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]

    def names(self) -> list[str]:
        return sorted({r["alert"] for r in self.alerts})

    def rule(self, name: str, **static: str) -> dict[str, Any]:
        found = [r for r in self.alerts if r["alert"] == name
                 and all(r["labels"].get(k) == v for k, v in static.items())]
        assert len(found) == 1, (name, static, len(found))
        return found[0]

    def alert(self, name: str, static: dict[str, str], **labels: str) -> dict[str, Any]:
        rule = self.rule(name, **static)
        every = {**labels, **rule["labels"]}
        return {"exp_labels": every,
                "exp_annotations": {k: fill(v, every) for k, v in rule["annotations"].items()}}


def fill(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)


def case(name: str, input_series: list[dict[str, str]],
         checks: list[tuple[str, str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {"name": name, "interval": "1m", "input_series": input_series,
            "alert_rule_test": [{"eval_time": t, "alertname": a, "exp_alerts": exp}
                                for t, a, exp in checks]}


def run(cases: list[dict[str, Any]], rules: Path = ROOT / ALERTS_FILE) -> None:
    """promtool test rules on ``cases`` against the shipped rules (or ``rules``); fails with
    its report."""
    done = promtool(cases, rules)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]


def promtool(cases: list[dict[str, Any]],
             rules: Path = ROOT / ALERTS_FILE) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "cases.test.yml"
        # Groups in the file's order at each step (promtool's default order is a map's, and an
        # alert group evaluated before the SLO groups reads their ratios one step late).
        order = [g["name"] for g in yaml.safe_load(rules.read_text())["groups"]]
        path.write_text(yaml.safe_dump({"rule_files": [str(rules)],
                                        "evaluation_interval": "1m",
                                        "group_eval_order": order, "tests": cases},
                                       sort_keys=False, width=4096))
        return subprocess.run([tool("promtool"), "test", "rules", str(path)],
                              capture_output=True, text=True)
