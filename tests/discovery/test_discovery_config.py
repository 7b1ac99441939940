"""The discovery: section: defaults, a config with only discovery, the key it needs."""

from __future__ import annotations

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.discovery.settings import DEFAULT_API, DiscoverySettings

ENV = {"RUNPOD_API_KEY": "test-key-0000"}


def test_a_config_with_only_discovery_loads_with_no_endpoints() -> None:
    config = parse_config("discovery: {}\n", env=ENV)
    settings = config.sections["discovery"]
    assert config.endpoints == ()
    assert settings == DiscoverySettings()
    assert (settings.api, settings.interval_s, settings.port, settings.kinds) == (
        DEFAULT_API, 300.0, 8000, ("pod", "serverless"))


def test_every_key_is_read() -> None:
    text = ('discovery: {api: "http://127.0.0.1:9/api/v2/", interval: 1m, timeout: 5s, '
            'pods: true, serverless: false, port: 8001, include: "^prod-", exclude: scratch, '
            "defaults: {model: m/one, min_context: 8192, required_context: 4096}}\n")
    settings = parse_config(text, env=ENV).sections["discovery"]
    assert settings.api == "http://127.0.0.1:9/api/v2"
    assert (settings.interval_s, settings.timeout_s, settings.kinds, settings.port) == (
        60.0, 5.0, ("pod",), 8001)
    assert settings.include.search("prod-a") and not settings.include.search("x-prod-a")
    assert settings.exclude.search("my-scratch-pod")
    assert settings.defaults == {"model": "m/one", "min_context": 8192, "required_context": 4096}


def test_no_discovery_section_means_none() -> None:
    config = parse_config("endpoints:\n  - {name: p, kind: pod, pod_id: x}\n", env=ENV)
    assert config.sections["discovery"] is None


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("discovery: {}\n", {},
         ["discovery: needs the RunPod API key: environment variable RUNPOD_API_KEY "
          "(runpod.api_key_env) is not set"]),
        ("runpod: {api_key_env: RP_READONLY}\ndiscovery: {}\n", ENV,
         ["discovery: needs the RunPod API key: environment variable RP_READONLY "
          "(runpod.api_key_env) is not set"]),
        ("discovery: {defaults: {api_key_env: OTHER_KEY}}\n", ENV,
         ["discovery.defaults.api_key_env: environment variable OTHER_KEY is not set"]),
    ],
    ids=["key-not-set", "named-key-not-set", "defaults-key-not-set"],
)
def test_discovery_needs_its_keys_in_the_environment(text: str, env: dict[str, str],
                                                     expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=env)
    assert caught.value.problems == expected


def test_defaults_layer_over_the_files_defaults() -> None:
    """The file's defaults are kept on the config for endpoints built later."""
    config = parse_config("defaults: {timeout: 3s, tries: 4}\ndiscovery: {}\n", env=ENV)
    assert (config.defaults["timeout"], config.defaults["tries"]) == (3.0, 4)


@pytest.mark.parametrize(("text", "base", "api"), [
    ("discovery: {}\n", "http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/v2"),
    ("discovery: {}\n", "", DEFAULT_API),
    ('discovery: {api: "http://127.0.0.1:7/v2"}\n', "http://127.0.0.1:9/api",
     "http://127.0.0.1:7/v2"),  # the file's own key wins
], ids=["from-env", "empty-env", "file-wins"])
def test_the_api_defaults_to_the_sdk_variable(text: str, base: str, api: str) -> None:
    """RUNPOD_API_BASE_URL, RunPod's SDK's own override, moves the REST API like the SDK."""
    settings = parse_config(text, env={**ENV, "RUNPOD_API_BASE_URL": base}).sections["discovery"]
    assert settings.api == api


def test_a_malformed_sdk_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("discovery: {}\n", env={**ENV, "RUNPOD_API_BASE_URL": "ftp:nowhere"})
    assert caught.value.problems == [
        'env.RUNPOD_API_BASE_URL: expected an http(s) URL, got "ftp:nowhere/v2"']
