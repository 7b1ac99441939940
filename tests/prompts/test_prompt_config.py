"""The prompts section: shapes, defaults, and the scope's token bounds from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import endpoint, parse_config

from probe.config import ConfigError
from probe.prompts.model import Message, PromptSection, TokenBounds

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
BASE = "endpoints:\n  - {name: qwen, kind: pod, pod_id: q, required_context: 11000}\n"


def section(text: str, env: dict[str, str] | None = None) -> PromptSection:
    value = parse_config(BASE + text, env={**ENV, **(env or {})}).sections["prompts"]
    assert isinstance(value, PromptSection)
    return value


def test_shorthand_and_defaults() -> None:
    prompts = section('prompts:\n  - {name: a, prompt: "2+2?", expect: {regex: "4"}, '
                      'cross: "RUNPOD.md Test table"}\n').prompts
    (prompt,) = prompts
    assert prompt.messages == (Message("user", "2+2?"),)
    assert (prompt.max_tokens, prompt.interval_s, prompt.seed, prompt.endpoints) == \
        (64, 300.0, 0, None)
    assert prompt.check_name == "prompt:a" and prompt.kinds == ("pod",)
    # a prompt spends tokens and wakes serverless workers: only pods unless opted in
    assert prompt.runs_on(endpoint(name="anything", kind="pod"))
    assert not prompt.runs_on(endpoint(name="paid", kind="openai"))
    assert not prompt.runs_on(endpoint(name="queue", kind="serverless"))


def test_messages_endpoints_interval_seed() -> None:
    (prompt,) = section(
        "prompts:\n  - name: b\n    messages: [{role: system, content: Be brief.}, "
        "{role: user, content: '2+2?'}]\n    expect: {equals: '4', not_contains: '5'}\n"
        "    cross: x\n    endpoints: [qwen]\n    interval: 90s\n    seed: null\n"
        "    max_tokens: 8\n").prompts
    assert [m.role for m in prompt.messages] == ["system", "user"]
    assert [e.label for e in prompt.expect] == ["equals", "not_contains"]
    assert (prompt.endpoints, prompt.interval_s, prompt.seed, prompt.max_tokens) == \
        (("qwen",), 90.0, None, 8)
    assert not prompt.runs_on(endpoint(name="other"))
    assert prompt.runs_on(endpoint(name="qwen", kind="serverless")), "named: whatever kind"


@pytest.mark.parametrize(("kinds", "problem"), [
    ("[pod, openai]", None),
    ("[gpu]", 'prompts[0].kinds: unknown kind "gpu" (expected some of: pod, serverless, openai)'),
    ("[]", "prompts[0].kinds: an empty list runs the prompt nowhere"),
], ids=["opt-in", "unknown", "empty"])
def test_kinds(kinds: str, problem: str | None) -> None:
    text = f'prompts:\n  - {{name: a, prompt: "2+2?", expect: {{regex: "4"}}, cross: x, ' \
           f"kinds: {kinds}}}\n"
    if problem is None:
        (prompt,) = section(text).prompts
        assert prompt.kinds == ("pod", "openai")
        assert prompt.runs_on(endpoint(kind="openai"))
        return
    with pytest.raises(ConfigError) as refused:
        section(text)
    assert problem in refused.value.problems


def test_no_prompts_section_is_fine() -> None:
    assert section("").prompts == ()


@pytest.mark.parametrize(
    ("env", "bounds"),
    [({}, TokenBounds(1, 4096, 64)),
     ({"TOKENS_MIN": "8", "TOKENS_MAX": "512", "MAX_TOKENS": "32"}, TokenBounds(8, 512, 32))],
    ids=["defaults", "from-env"],
)
def test_bounds_come_from_scope_env(env: dict[str, str], bounds: TokenBounds) -> None:
    assert section("", env).bounds == bounds


def test_max_tokens_defaults_to_env_max_tokens() -> None:
    (prompt,) = section('prompts:\n  - {name: a, prompt: "2+2?", expect: {regex: "4"}, '
                        "cross: x}\n", {"MAX_TOKENS": "24"}).prompts
    assert prompt.max_tokens == 24


BAD_ENV = [
    ("min-not-number", {"TOKENS_MIN": "few"}, 'env.TOKENS_MIN: expected a whole number, got "few"'),
    ("max-zero", {"TOKENS_MAX": "0"}, "env.TOKENS_MAX: must be at least 1, got 0"),
    ("min-above-max", {"TOKENS_MIN": "100", "TOKENS_MAX": "50"},
     "env.TOKENS_MIN: TOKENS_MIN (100) is above TOKENS_MAX (50)"),
    ("default-outside", {"TOKENS_MAX": "32", "MAX_TOKENS": "64"},
     "env.MAX_TOKENS: MAX_TOKENS (64) is outside TOKENS_MIN..TOKENS_MAX (1..32)"),
]


@pytest.mark.parametrize(("env", "message"), [b[1:] for b in BAD_ENV], ids=[b[0] for b in BAD_ENV])
def test_bad_bound_env_vars_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        section("", env)
    assert caught.value.problems == [message]


@pytest.mark.parametrize(("max_tokens", "ok"), [(7, False), (8, True), (512, True), (513, False)],
                         ids=["below-min", "at-min", "at-max", "above-max"])
def test_prompt_max_tokens_must_lie_within_env_bounds(max_tokens: int, ok: bool) -> None:
    text = (f'prompts:\n  - {{name: a, prompt: "2+2?", expect: {{regex: "4"}}, cross: x, '
            f"max_tokens: {max_tokens}}}\n")
    env = {"TOKENS_MIN": "8", "TOKENS_MAX": "512"}
    if ok:
        assert section(text, env).prompts[0].max_tokens == max_tokens
    else:
        with pytest.raises(ConfigError) as caught:
            section(text, env)
        assert caught.value.problems == [f"prompts[0].max_tokens: must be within TOKENS_MIN.."
                                         f"TOKENS_MAX (8..512), got {max_tokens}"]


def test_endpoint_keys_land_in_extra() -> None:
    text = ("endpoints:\n  - {name: q, kind: pod, pod_id: q, required_context: 11000, "
            "token_budget_per_hour: 5000, active_context_probe: 6h}\n")
    extra = parse_config(text, env=ENV).endpoints[0].extra
    assert (extra["required_context"], extra["token_budget_per_hour"],
            extra["active_context_probe"]) == (11000, 5000, 21600.0)


def test_example_config_ships_the_scope_governance_questions() -> None:
    example = Path(__file__).parents[2] / "config.yaml"
    config = parse_config(example.read_text(), env={"RUNPOD_API_KEY": ENV["RUNPOD_API_KEY"]})
    prompts = {p.messages[-1].content: p for p in config.sections["prompts"].prompts}
    assert prompts["Are deployments validated?"].cross == "RUNPOD/CANON.md axiom"
    assert prompts["What happens on validation failure?"].cross == "RUNPOD/CANON.md constraints"
    assert prompts["Are credentials hardcoded?"].cross == "RUNPOD/CANON.md constraints"
    assert any("2+2" in question for question in prompts)
