"""Issue 20, item 4: a config that would send RunPod's account key (``runpod.api_key_env``,
by name or by value) to a pod or another provider is refused with one line per problem."""

from __future__ import annotations

import pytest
from helpers import parse_config

from probe.config import ConfigError

ACCOUNT = "rpa_account0000key0000"
ENV = {"RUNPOD_API_KEY": ACCOUNT, "SAME_KEY": ACCOUNT, "VLLM_API_KEY": "vllm-own-0000",
       "DEEPSEEK_API_KEY": "sk-deepseek-0000"}
HEAD = 'storage: {path: "/tmp/probe-account-key.db"}\n'
POD = "  - {name: p, kind: pod, pod_id: abc}\n"


def problems(text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + text, env=env)
    return caught.value.problems


@pytest.mark.parametrize("name", ["RUNPOD_API_KEY", "SAME_KEY"])
def test_the_pods_key_variable_may_not_be_the_account_key(name: str) -> None:
    (line,) = problems(f"runpod: {{pod_api_key_env: {name}}}\nendpoints:\n" + POD)
    assert line.startswith(f"runpod.pod_api_key_env: {name} ")
    assert "account key" in line and "pod" in line and ACCOUNT not in line


@pytest.mark.parametrize(("row", "where"), [
    ("{name: p, kind: pod, pod_id: abc, api_key_env: RUNPOD_API_KEY}", "a pod's server"),
    ("{name: p, kind: pod, pod_id: abc, api_key_env: SAME_KEY}", "a pod's server"),
    ("{name: o, kind: openai, base_url: 'https://api.deepseek.com/v1', "
     "api_key_env: RUNPOD_API_KEY}", "this provider"),
    ("{name: o, kind: openai, base_url: 'https://api.deepseek.com/v1', api_key_env: SAME_KEY}",
     "this provider"),
    ("{name: o, kind: openai, base_url: 'https://api.runpod.ai/v2/abc/openai/v1/extra', "
     "api_key_env: RUNPOD_API_KEY}", "this provider"),
], ids=["pod-name", "pod-value", "provider-name", "provider-value", "not-runpods-route"])
def test_an_endpoint_may_not_send_the_account_key_elsewhere(row: str, where: str) -> None:
    (line,) = problems(f"endpoints:\n  - {row}\n")
    assert line.startswith("endpoints[0].api_key_env: ")
    assert f"never to {where}" in line and ACCOUNT not in line


def test_a_default_key_is_refused_for_each_pod_it_reaches() -> None:
    lines = problems("defaults: {api_key_env: RUNPOD_API_KEY}\nendpoints:\n" + POD
                     + "  - {name: s, kind: serverless, endpoint_id: xyz}\n")
    assert [line.split(":")[0] for line in lines] == ["endpoints[0].api_key_env"]


def test_runpod_itself_gets_the_account_key() -> None:
    config = parse_config(HEAD + "endpoints:\n" + POD
                          + "  - {name: s, kind: serverless, endpoint_id: xyz}\n"
                          "  - {name: r, kind: openai, base_url: "
                          "'https://api.runpod.ai/v2/xyz/openai/v1', api_key_env: SAME_KEY}\n"
                          "  - {name: d, kind: openai, base_url: 'https://api.deepseek.com/v1',"
                          " api_key_env: DEEPSEEK_API_KEY}\n", env=ENV)
    keys = {e.name: e.api_key_env for e in config.endpoints}
    assert keys == {"p": "VLLM_API_KEY", "s": "RUNPOD_API_KEY", "r": "SAME_KEY",
                    "d": "DEEPSEEK_API_KEY"}
