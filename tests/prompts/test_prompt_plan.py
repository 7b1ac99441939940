"""Planning: one job per prompt × endpoint at the prompt's interval, plus context checks."""

from __future__ import annotations

from helpers import parse_config, plan

from probe.prompts.model import COMPLETION_KEY, PROMPT_KEY

ENV = {"RUNPOD_API_KEY": "test-key-0000", "MAX_TOKENS": "48"}
TEXT = """
endpoints:
  - {name: big, kind: pod, pod_id: b, required_context: 11000, active_context_probe: 6h}
  - {name: plain, kind: serverless, endpoint_id: e}
prompts:
  - {name: everywhere, prompt: "2+2?", expect: {regex: "4"}, cross: x, interval: 2m,
     kinds: [pod, serverless]}
  - {name: pods-only, prompt: "1+1?", expect: {regex: "2"}, cross: x}
  - {name: only-big, prompt: "3+3?", expect: {regex: "6"}, cross: x, endpoints: [big]}
"""


def test_jobs_per_prompt_endpoint_and_context() -> None:
    jobs = {job.id: job for job in plan(parse_config(TEXT, env=ENV))}
    assert set(jobs) == {"big/checks", "plain/checks", "big/prompt:everywhere",
                         "big/prompt:only-big", "plain/prompt:everywhere",
                         "big/context_active", "big/prompt:pods-only"}
    everywhere = jobs["plain/prompt:everywhere"]
    assert everywhere.checks == ("prompt:everywhere",) and everywhere.interval_s == 120.0
    assert everywhere.params[PROMPT_KEY].name == "everywhere"
    assert everywhere.endpoint.extra == jobs["plain/checks"].endpoint.extra  # not copied into
    assert jobs["big/context_active"].interval_s == 6 * 3600


def test_context_fit_reads_the_models_answer_of_the_same_job() -> None:
    """The context fit runs with the endpoint's checks and is judged from their GET
    /v1/models: no second request for the same card."""
    checks = {job.id: job for job in plan(parse_config(TEXT, env=ENV))}["big/checks"]
    assert checks.checks[-1] == "context" and "models" in checks.checks
    assert checks.derived == (("context", "models"),)
    assert checks.params[COMPLETION_KEY] == 48


def test_without_the_models_check_the_context_fit_fetches_on_its_own() -> None:
    text = ("endpoints:\n  - {name: p, kind: pod, pod_id: p, checks: [health],"
            " required_context: 4000}\n")
    jobs = {job.id: job for job in plan(parse_config(text, env=ENV))}
    assert set(jobs) == {"p/checks", "p/context"}
    assert jobs["p/context"].checks == ("context",) and jobs["p/context"].derived == ()
    assert jobs["p/context"].params[COMPLETION_KEY] == 48
    assert jobs["p/context"].interval_s == jobs["p/checks"].interval_s


def test_without_prompts_or_required_context_nothing_extra_is_planned() -> None:
    text = "endpoints:\n  - {name: p, kind: pod, pod_id: p}\n"
    assert [job.id for job in plan(parse_config(text, env=ENV))] == ["p/checks"]


def test_the_jobs_of_one_prompt_share_its_checks_and_parameters() -> None:
    """Kept for the daemon's life, one per prompt and endpoint: the same tuple and the same
    read-only parameters on every endpoint, each job still its own id."""
    text = TEXT.replace("  - {name: plain, kind: serverless, endpoint_id: e}\n",
                        "  - {name: plain, kind: serverless, endpoint_id: e}\n"
                        "  - {name: other, kind: pod, pod_id: o}\n")
    jobs = {job.id: job for job in plan(parse_config(text, env=ENV))}
    big, other = jobs["big/prompt:pods-only"], jobs["other/prompt:pods-only"]
    assert big.checks == ("prompt:pods-only",) and big.checks is other.checks
    assert big.params is other.params and big.params[PROMPT_KEY].name == "pods-only"
    assert big.endpoint.name == "big" and other.endpoint.name == "other"
