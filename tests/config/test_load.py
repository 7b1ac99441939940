"""Config loading: every invalid file is refused with its exact messages; valid ones load."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.config.load import DEFAULT_API_BASE

DATA = Path(__file__).parents[1] / "data" / "config"
INVALID = sorted(DATA.glob("invalid-*.yaml"))
ENV = {"RUNPOD_API_KEY": "test-key-0000"}


def render(path: Path, sim: str = "http://127.0.0.1:9", state: str = "/tmp/x") -> str:
    return path.read_text().replace("SIM", sim).replace("STATE", state)


def test_there_are_at_least_twelve_invalid_configs() -> None:
    assert len(INVALID) >= 12


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_lists_exact_problems(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    with pytest.raises(ConfigError) as caught:
        parse_config(render(path), env=ENV)
    assert caught.value.problems == [line.replace("SIM", "http://127.0.0.1:9")
                                     for line in expected]


BASE = """
runpod: {api_key_env: RUNPOD_API_KEY}
endpoints:
  - {name: qwen-pod, kind: pod, pod_id: aq0t10sits4kz2, port: 8000, model: Qwen/Q, min_context: 32768, interval: 15s, timeout: 7s}
  - {name: vllm-serverless, kind: serverless, endpoint_id: vllm-sia7z3a2gk6wr4}
  - {name: deepseek, kind: openai, base_url: "https://api.deepseek.com/v1", api_key_env: DEEPSEEK_API_KEY, model: deepseek-chat}
"""


def test_issue_example_builds_runpod_urls() -> None:
    config = parse_config(BASE, env={**ENV, "DEEPSEEK_API_KEY": "dk-0000"})
    pod, serverless, provider = config.endpoints
    assert pod.root_url == "https://aq0t10sits4kz2-8000.proxy.runpod.net"
    assert pod.openai_base == "https://aq0t10sits4kz2-8000.proxy.runpod.net/v1"
    assert (pod.interval_s, pod.min_context, pod.model) == (15.0, 32768, "Qwen/Q")
    assert serverless.root_url == f"{DEFAULT_API_BASE}/vllm-sia7z3a2gk6wr4"
    assert serverless.openai_base == f"{DEFAULT_API_BASE}/vllm-sia7z3a2gk6wr4/openai/v1"
    assert serverless.api_key_env == "RUNPOD_API_KEY"
    assert provider.openai_base == "https://api.deepseek.com/v1"
    assert provider.api_key_env == "DEEPSEEK_API_KEY"
    assert config.metrics.host == "127.0.0.1" and config.metrics.port == 9464


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"RUNPOD_TIMEOUT_MS": "2500"}, "timeout_s", 2.5),
        ({"RUNPOD_TRIES": "1"}, "tries", 1),
        ({"RUNPOD_RETRY_DELAY_MS": "0"}, "retry_delay_s", 0.0),
        ({"RUNPOD_MODEL": "m/one"}, "model", "m/one"),
        ({"MODEL": "m/two"}, "model", "m/two"),
        ({"RUNPOD_MODEL": "m/one", "MODEL": "m/two"}, "model", "m/one"),
    ],
    ids=["timeout", "tries", "retry-delay", "runpod-model", "model", "runpod-model-wins"],
)
def test_scope_env_vars_supply_defaults(env: dict[str, str], field: str, expected: object) -> None:
    text = "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n"
    endpoint = parse_config(text, env={**ENV, **env}).endpoints[0]
    assert getattr(endpoint, field) == expected


def test_file_defaults_beat_env_and_endpoint_beats_defaults() -> None:
    text = ("defaults: {timeout: 3s, tries: 3}\n"
            "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e, tries: 5}\n")
    endpoint = parse_config(text, env={**ENV, "RUNPOD_TIMEOUT_MS": "9000",
                                       "RUNPOD_TRIES": "1"}).endpoints[0]
    assert (endpoint.timeout_s, endpoint.tries) == (3.0, 5)


def test_runpod_base_url_env_sets_api_base() -> None:
    text = "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n"
    config = parse_config(text, env={**ENV, "RUNPOD_BASE_URL": "http://127.0.0.1:8199/v2/"})
    assert config.endpoints[0].root_url == "http://127.0.0.1:8199/v2/e"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUNPOD_TIMEOUT_MS": "soon"}, 'env.RUNPOD_TIMEOUT_MS: expected a whole number, got "soon"'),
        ({"RUNPOD_TRIES": "0"}, "env.RUNPOD_TRIES: must be at least 1, got 0"),
        ({"RUNPOD_BASE_URL": "ftp://x"}, 'env.RUNPOD_BASE_URL: expected an http(s) URL, got "ftp://x"'),
    ],
    ids=["timeout-not-number", "tries-zero", "base-url-not-http"],
)
def test_bad_scope_env_vars_are_config_errors(env: dict[str, str], message: str) -> None:
    text = "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={**ENV, **env})
    assert message in caught.value.problems


def test_null_api_key_env_sends_no_key_and_needs_no_variable() -> None:
    text = "endpoints:\n  - {name: p, kind: pod, pod_id: x, api_key_env: null}\n"
    assert parse_config(text, env={}).endpoints[0].api_key_env is None


@pytest.mark.parametrize(
    "value",
    ["sk-" + "fake" * 6, "https://user:hunter2@example.com/v1", "hf_" + "fake" * 6],
    ids=["openai-key", "url-userinfo", "hf-token"],
)
def test_secret_shaped_strings_anywhere_are_refused(value: str) -> None:
    text = f'endpoints:\n  - {{name: p, kind: openai, base_url: "{value}"}}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=ENV)
    assert any(line.startswith("endpoints[0].base_url:") for line in caught.value.problems)
    assert value not in str(caught.value)  # a refusal never repeats the secret


@pytest.mark.parametrize("name", ["qwen\nINFO forged", "qwen\r", "a\tb", "bell\a", "esc\x1b[31m",
                                  "line\u2028sep", "bidi\u202eevil", "nul\x00"],
                         ids=["newline", "carriage-return", "tab", "bell", "ansi-escape",
                              "unicode-line-separator", "bidi-override", "nul"])
def test_an_endpoint_name_is_printable_text_on_one_line(name: str) -> None:
    """A name is written into log lines, ledger entries and reports: a line break there
    forges a line, a control character rewrites the terminal."""
    quoted = name.encode("unicode_escape").decode().replace('"', '\\"')
    text = f'endpoints:\n  - {{name: "{quoted}", kind: pod, pod_id: x}}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=ENV)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith("endpoints[0].name: ") and problem.endswith(
        "has a line break, tab or control character; a name is printable text on one line")
    assert problem.isprintable()


def test_a_name_may_hold_spaces_and_any_letters() -> None:
    text = 'endpoints:\n  - {name: "Qwen 2.5 — Zürich/東京", kind: pod, pod_id: x}\n'
    assert parse_config(text, env=ENV).endpoints[0].name == "Qwen 2.5 — Zürich/東京"


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config.yaml"
    config = parse_config(example.read_text(), env={"RUNPOD_API_KEY": ENV["RUNPOD_API_KEY"]})
    assert [e.name for e in config.endpoints] == ["qwen-pod", "vllm-serverless"]


@pytest.mark.parametrize(("env", "text", "expected"), [
    ({}, "", "/var/lib/runpod-probe/probe.db"),
    # systemd's StateDirectory= sets it (first entry of a list)
    ({"STATE_DIRECTORY": "/srv/state:/srv/other"}, "", "/srv/state/probe.db"),
    ({"STATE_DIRECTORY": "/srv/state"}, "storage: {path: /data/p.db}\n", "/data/p.db"),
], ids=["built-in", "systemd-state-directory", "file-wins"])
def test_the_database_lives_in_the_state_directory(env: dict[str, str], text: str,
                                                   expected: str) -> None:
    config = parse_config(text + "endpoints:\n  - {name: p, kind: pod, pod_id: x}\n",
                          env={**ENV, **env})
    assert str(config.storage.path) == expected


HEAD = "storage: {path: /tmp/x/p.db}\nendpoints:\n  - {name: p, kind: pod, pod_id: abc}\n"


@pytest.mark.parametrize(("section", "expected"), [
    ("", (3, 2, 1800.0)),
    ("verdict: {down_after: 1, up_after: 4, persistent_after: 5m}\n", (1, 4, 300.0)),
    ("ledger: {down_after: 2, persistent_after: 1h}\n", (2, 2, 3600.0)),  # the older place
])
def test_the_verdicts_hysteresis_comes_from_verdict_or_the_older_ledger_section(
        section: str, expected: tuple[int, int, float]) -> None:
    from probe.verdict import Hysteresis

    h = Hysteresis.of(parse_config(section + HEAD, env=ENV))
    assert (h.down_after, h.up_after, h.persistent_after_s) == expected


def test_hysteresis_in_both_sections_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config("verdict: {down_after: 1}\nledger: {down_after: 5}\n" + HEAD, env=ENV)
    assert refused.value.problems == [
        "ledger: down_after, up_after and persistent_after belong in verdict: now; give them "
        "there only (the file has both sections)"]


def test_a_verdict_section_is_checked_like_any_other() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config("verdict: {down_after: 0, flap: 3}\n" + HEAD, env=ENV)
    assert len(refused.value.problems) == 2
    assert any("verdict.down_after" in p for p in refused.value.problems)
    assert any("flap" in p for p in refused.value.problems)


def test_native_histograms_are_off_unless_asked_for() -> None:
    endpoint = ("endpoints:\n  - {name: a, kind: openai, base_url: 'http://x.test/v1', "
                "api_key_env: null}\n")
    assert parse_config(endpoint).metrics.native_histograms is False
    on = parse_config("metrics: {native_histograms: true}\n" + endpoint)
    assert on.metrics.native_histograms is True
    with pytest.raises(ConfigError) as refused:
        parse_config("metrics: {native_histograms: 'yes'}\n" + endpoint)
    assert "metrics.native_histograms: expected true or false" in str(refused.value)


HELD = """
defaults: {checks: [models, health, vllm_metrics]}
endpoints:
  - {name: a, kind: pod, pod_id: aaaaaaaaaaaaaa, required_context: 4096}
  - {name: b, kind: pod, pod_id: bbbbbbbbbbbbbb, checks: [models]}
  - {name: c, kind: pod, pod_id: cccccccccccccc, stuck_after: 4}
"""


def test_an_endpoint_keeps_only_the_feature_keys_that_are_set() -> None:
    a, b, c = parse_config(HELD, env=ENV).endpoints
    assert a.extra == {"required_context": 4096}
    assert b.extra == {}
    assert c.extra == {"stuck_after": 4}


def test_endpoints_with_the_default_checks_share_one_tuple() -> None:
    a, b, c = parse_config(HELD, env=ENV).endpoints
    assert a.checks == ("models", "health", "vllm_metrics")
    assert a.checks is c.checks
    assert b.checks == ("models",)


def test_texts_endpoints_repeat_are_one_string() -> None:
    text = HELD.replace("required_context: 4096}", "required_context: 4096, model: m/x}")
    text = text.replace("stuck_after: 4}", "stuck_after: 4, model: m/x}")
    a, b, c = parse_config(text, env=ENV).endpoints
    assert a.kind == "pod" and a.kind is b.kind is c.kind
    assert a.model == "m/x" and a.model is c.model


@pytest.mark.parametrize(("given", "expected"), [
    ("", None), ("scheduler: {max_concurrent: auto}", None),
    ("scheduler: {max_concurrent: 200}", 200)])
def test_max_concurrent_is_auto_unless_a_number_is_given(given: str, expected: int | None) -> None:
    env = {**ENV, "DEEPSEEK_API_KEY": "dk-0000"}
    assert parse_config(BASE + given, env=env).scheduler.max_concurrent == expected


@pytest.mark.parametrize(("given", "message"), [
    ("lots", 'scheduler.max_concurrent: expected a whole number or "auto", got "lots"'),
    ("0", "scheduler.max_concurrent: must be at least 1, got 0"),
    ("2.5", "scheduler.max_concurrent: expected a whole number, got a number")])
def test_a_bad_max_concurrent_stops_the_config(given: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"scheduler: {{max_concurrent: {given}}}",
                     env={**ENV, "DEEPSEEK_API_KEY": "dk-0000"})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
