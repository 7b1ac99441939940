"""The export feature as a value: the ``slo:`` section parsed with its field paths, and the
``generate`` command; it starts nothing in the daemon."""

from __future__ import annotations

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.export.plugin import FEATURE
from probe.export.slo import SloSettings

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
ENDPOINTS = "endpoints:\n  - {name: qwen-a, kind: pod, pod_id: a}\n"


def test_the_slo_section_is_parsed_into_settings_and_nothing_starts() -> None:
    assert FEATURE.startup == () and len(FEATURE.commands) == 1
    config = parse_config(ENDPOINTS + "slo: {availability: 99.9, period: 7d}\n", env=ENV)
    assert config.sections["slo"] == SloSettings(availability=99.9, period_s=7 * 86400.0)


def test_a_bad_slo_section_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ENDPOINTS + "slo: [1]\n", env=ENV)
    assert "slo: expected a mapping, got a list" in caught.value.problems
