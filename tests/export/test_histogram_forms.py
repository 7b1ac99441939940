"""Every histogram the shipped rules and dashboards read is read in both forms a
Prometheus may store it: classic buckets (``_bucket``, ``_count``) or, with
``--enable-feature=native-histograms``, the native histogram under its own name. (That
they give the same answers from real Prometheus servers storing either or both:
tests/e2e/test_native_histograms.py.)"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from probe.export.dashboards import DASHBOARDS_DIR
from probe.export.files import ALERTS_FILE, artefacts

CLASSIC = re.compile(r"\b(runpod_probe_\w+)_(bucket|count)\{")


def expressions() -> list[tuple[str, str]]:
    out = []
    for path, text in artefacts().items():
        if path == ALERTS_FILE:
            out += [(r.get("record") or r["alert"], r["expr"])
                    for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
        elif path.parent == DASHBOARDS_DIR:
            out += [(p["title"], t["expr"]) for p in json.loads(text)["panels"]
                    for t in p.get("targets", [])]
    return out


READS_HISTOGRAMS = [(what, expr) for what, expr in expressions() if CLASSIC.search(expr)]


def test_the_rules_and_dashboards_read_histograms() -> None:
    names = {what for what, _ in READS_HISTOGRAMS}
    assert {"slo:sli_events:rate5m", "slo:sli_bad_events:rate5m",
            "slo:sli_events:total_sampled", "API latency p50 / p95",
            "Round trip total p95", "Scheduler lag p99"} <= names


@pytest.mark.parametrize(("what", "expr"), READS_HISTOGRAMS,
                         ids=[what for what, _ in READS_HISTOGRAMS])
def test_every_classic_read_has_its_native_counterpart_after_or(what: str, expr: str) -> None:
    """Each classic read is ``or``-ed with the same histogram read natively (its own name,
    the same selector): a Prometheus keeping only the native histogram has data."""
    for name, _ in set(CLASSIC.findall(expr)):
        classic_at = expr.index(f"{name}_")
        native = re.search(rf"\b{name}\{{", expr)
        assert native, (what, name)
        between = expr[classic_at:native.start()]
        assert re.search(r"\n *or\n", between), (what, name)

