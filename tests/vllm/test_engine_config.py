"""Engine checks in the config: a pod runs them by default; stuck_after is read per endpoint."""

from __future__ import annotations

from helpers import parse_config

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
CONFIG = """
runpod: {api_key_env: RUNPOD_API_KEY}
endpoints:
  - {name: pod, kind: pod, pod_id: aq0t10sits4kz2}
  - {name: tuned, kind: pod, pod_id: b, stuck_after: 5}
  - {name: listed, kind: pod, pod_id: c, checks: [models]}
  - {name: provider, kind: openai, base_url: "https://api.example.com/v1", api_key_env: null}
  - {name: self-hosted, kind: openai, base_url: "https://vllm.example.com/v1", api_key_env: null,
     checks: [models, health, vllm_metrics], stuck_after: 2}
"""


def test_pods_run_models_health_and_vllm_metrics_by_default() -> None:
    config = parse_config(CONFIG, env=ENV)
    assert config.endpoint("pod").checks == ("models", "health", "vllm_metrics")
    assert config.endpoint("listed").checks == ("models",)
    assert config.endpoint("provider").checks == ("models",)  # providers have no /health


def test_stuck_after_is_per_endpoint_and_absent_means_the_default() -> None:
    config = parse_config(CONFIG, env=ENV)
    assert "stuck_after" not in config.endpoint("pod").extra  # absent: the default
    assert config.endpoint("tuned").extra["stuck_after"] == 5
    assert config.endpoint("self-hosted").extra["stuck_after"] == 2


def test_engine_checks_on_a_self_hosted_openai_server_read_its_root() -> None:
    endpoint = parse_config(CONFIG, env=ENV).endpoint("self-hosted")
    assert endpoint.root_url == "https://vllm.example.com"  # /health and /metrics live here
