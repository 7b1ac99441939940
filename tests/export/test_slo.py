"""The slo: section (exact problems), the burn windows it derives, and generate --config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from probe.config.fields import Problems
from probe.export.slo import BURN_WINDOWS, SloSettings, bucket_label, parse_slo


def parse(raw: object) -> tuple[SloSettings, list[str]]:
    problems = Problems()
    return parse_slo(raw, "slo", problems), problems.lines


def test_defaults_without_a_section() -> None:
    settings, problems = parse(None)
    assert problems == []
    assert settings == SloSettings(99.5, 99.0, 2.5, 30 * 86400.0, 20)
    assert settings.budget("availability") == 0.005


def test_values_are_read() -> None:
    settings, problems = parse({"availability": 99.9, "latency": 95, "latency_threshold": "10s",
                                "period": "28d", "min_events": 50})
    assert problems == []
    assert (settings.objective("availability"), settings.objective("latency")) == (0.999, 0.95)
    assert (settings.latency_threshold_s, settings.period, settings.min_events) == \
        (10.0, "28d", 50)


@pytest.mark.parametrize(("raw", "problem"), [
    ({"availability": 101}, "slo.availability: must be between 90 and 99.999, got 101"),
    ({"latency": 80}, "slo.latency: must be between 90 and 99.999, got 80"),
    ({"availability": "high"}, "slo.availability: expected a percentage like 99.5, got 'high'"),
    ({"latency_threshold": "3s"}, "slo.latency_threshold: must be a bucket bound of "
     "runpod_probe_latency_seconds{check_kind=\"api\"} (0.25s, 1s, 2.5s, 10s), got 3s"),
    ({"period": "1d"}, "slo.period: must be between 7d and 90d, got 1d"),
    ({"min_events": 0}, "slo.min_events: must be at least 1, got 0"),
    ({"page_causes": ["pod_gone"]}, "slo.page_causes: 'pod_gone' is not one of answer_wrong, "
     "context_too_small, model_mismatch (the others page already)"),
    ({"page_causes": "answer_wrong"}, "slo.page_causes: expected a list of strings, got a "
     "string"),
    ({"availabilty": 99}, 'slo.availabilty: unknown key (did you mean "availability"?)'),
    ([1], "slo: expected a mapping, got a list"),
])
def test_invalid_values_are_one_line_each(raw: object, problem: str) -> None:
    settings, problems = parse(raw)
    assert problems == [problem]
    assert settings == SloSettings()


def test_burn_factors_follow_the_workbook_for_30_days_and_scale_with_the_period() -> None:
    month = SloSettings()
    assert [(w.long, w.short, w.factor(month.period_s)) for w in BURN_WINDOWS] == [
        ("1h", "5m", 14.4), ("6h", "30m", 6.0), ("1d", "2h", 3.0), ("3d", "6h", 1.0)]
    assert BURN_WINDOWS[0].factor(60 * 86400.0) == 28.8  # same 2 % of a budget twice as big


def test_the_guard_never_lets_one_failed_round_cross_a_threshold() -> None:
    for availability in (95.0, 99.5, 99.9, 99.99):
        settings = SloSettings(availability=availability)
        for window in BURN_WINDOWS:
            threshold = window.factor(settings.period_s) * settings.budget("availability")
            guard = settings.guard("availability", window)
            assert guard >= settings.min_events
            assert 1 / guard <= threshold or threshold >= 1


def test_bucket_labels_are_written_like_prometheus_client() -> None:
    assert [bucket_label(b) for b in (0.05, 2.5, 10.0, 60)] == ["0.05", "2.5", "10.0", "60.0"]


def test_generate_reads_only_the_slo_section(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"slo": {"availability": 99.9}, "endpoints": "ignored"}))
    done = subprocess.run([sys.executable, "-m", "probe", "generate", "--out", str(tmp_path),
                           "--config", str(config), "--grafana-url", "https://grafana.test/"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rules = (tmp_path / "alerts" / "runpod-probe.rules.yml").read_text()
    assert "vector(0.999)" in rules and "vector(0.995)" not in rules
    assert "dashboard_url: https://grafana.test/d/runpod-probe-endpoint/" in rules


def test_generate_refuses_an_invalid_slo_section(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("slo: {availability: 101}\n")
    done = subprocess.run([sys.executable, "-m", "probe", "generate", "--out", str(tmp_path),
                           "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == f"{config}: slo.availability: must be between 90 and 99.999, got 101\n"
    assert not (tmp_path / "alerts").exists()
