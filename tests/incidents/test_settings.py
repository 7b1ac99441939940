"""The incidents: and vantage: sections: defaults, and every invalid value refused with its
field path (like every other config error)."""

from __future__ import annotations

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.incidents.settings import IncidentSettings, VantageSettings

BASE = ('storage: {path: /tmp/x.db}\nmetrics: {listen: "127.0.0.1:0"}\n'
        "endpoints:\n  - {name: a, kind: openai, base_url: 'http://127.0.0.1:1/v1'}\n")


def test_defaults() -> None:
    config = parse_config(BASE)
    assert IncidentSettings.of(config) == IncidentSettings(3, 0.5, 2.0)
    assert VantageSettings.of(config) == VantageSettings((), 15.0, 5.0)


def test_given_values() -> None:
    config = parse_config(BASE + "incidents: {min_endpoints: 5, min_share: 0.25, "
                          "window_intervals: 3}\nvantage: {reference_urls: "
                          "['https://example.com/'], interval: 30s, timeout: 2s}\n")
    assert IncidentSettings.of(config) == IncidentSettings(5, 0.25, 3.0)
    assert VantageSettings.of(config) == VantageSettings(("https://example.com/",), 30.0, 2.0)


@pytest.mark.parametrize(("text", "problem"), [
    ("incidents: {min_endpoints: 1}", "incidents.min_endpoints: must be at least 2, got 1"),
    ("incidents: {min_share: 0}", "incidents.min_share: must be above 0 and at most 1, got 0"),
    ("incidents: {min_share: 1.5}",
     "incidents.min_share: must be above 0 and at most 1, got 1.5"),
    ("incidents: {window_intervals: yes}", "incidents.window_intervals: expected a number, "
     "got bool"),
    ("incidents: {min_endpoint: 3}", 'incidents.min_endpoint: unknown key (did you mean '
     '"min_endpoints"?)'),
    ("vantage: {reference_urls: ['ftp://x']}", "vantage.reference_urls[0]"),
    ("vantage: {interval: 5s, timeout: 5s}",
     "vantage.timeout: must be shorter than the interval (5s), got 5s"),
], ids=["min-endpoints", "share-zero", "share-above-one", "window-bool", "typo", "url",
        "timeout"])
def test_invalid_values_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text + "\n")
    assert any(line.startswith(problem) for line in caught.value.problems), \
        caught.value.problems
