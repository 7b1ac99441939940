"""Every expectation kind passes and fails; negation flips; what cannot be checked fails."""

from __future__ import annotations

from typing import Any

import pytest

from probe.config.fields import Problems
from probe.prompts.expectations import Answer, judge, parse_expectations
from probe.prompts.model import Expectation


def one(key: str, value: Any) -> Expectation:
    problems = Problems()
    parsed = parse_expectations({key: value}, "expect", problems)
    assert not problems.lines, problems.lines
    return parsed[0]


def answer(content: str = "", total_s: float | None = 1.0, ttft_s: float | None = 0.2,
           tps: float | None = 40.0) -> Answer:
    return Answer(content, total_s, ttft_s, tps)


# (id, key, argument, answer, passes)
CASES = [
    ("equals-pass", "equals", "4", answer(" 4\n"), True),
    ("equals-fail", "equals", "4", answer("4.0"), False),
    ("contains-pass", "contains", "every deployment", answer("Yes — every deployment is."), True),
    ("contains-fail-case", "contains", "Every deployment", answer("every deployment"), False),
    ("icontains-pass", "icontains", "FAIL CLOSED", answer("We fail closed."), True),
    ("icontains-fail", "icontains", "fail closed", answer("It fails open."), False),
    ("regex-pass", "regex", r"^\s*4\s*$", answer("4"), True),
    ("regex-fail", "regex", r"^\s*4\s*$", answer("The answer is 4"), False),
    ("json-valid-pass", "json", True, answer('{"status": "ok"}'), True),
    ("json-valid-fenced-pass", "json", True, answer('```json\n{"status": "ok"}\n```'), True),
    ("json-valid-fail", "json", True, answer("status ok"), False),
    ("json-path-equals-pass", "json", {"path": "$.items[1].id", "equals": 7},
     answer('{"items": [{"id": 3}, {"id": 7}]}'), True),
    ("json-path-equals-fail", "json", {"path": "$.items[1].id", "equals": 7},
     answer('{"items": [{"id": 3}, {"id": 8}]}'), False),
    ("json-path-exists-pass", "json", {"path": "status"}, answer('{"status": null}'), True),
    ("json-path-missing-fail", "json", {"path": "status"}, answer('{"state": "ok"}'), False),
    ("number-pass", "number", 4, answer("The answer is 4."), True),
    ("number-tolerance-pass", "number", {"value": 3.14, "tolerance": 0.01}, answer("pi ≈ 3.1416"),
     True),
    ("number-fail", "number", {"value": 4, "tolerance": 0.5}, answer("5"), False),
    ("max_latency-pass", "max_latency", "2s", answer("x", total_s=1.5), True),
    ("max_latency-fail", "max_latency", "2s", answer("x", total_s=2.5), False),
    ("max_ttft-pass", "max_ttft", "500ms", answer("x", ttft_s=0.4), True),
    ("max_ttft-fail", "max_ttft", "500ms", answer("x", ttft_s=0.6), False),
    ("min_tokens_per_second-pass", "min_tokens_per_second", 20, answer("x", tps=25.0), True),
    ("min_tokens_per_second-fail", "min_tokens_per_second", 20, answer("x", tps=12.5), False),
]


@pytest.mark.parametrize(("key", "argument", "observed", "passes"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_kind_passes_or_fails(key: str, argument: Any, observed: Answer, passes: bool) -> None:
    finding = judge(one(key, argument), observed)
    assert finding.passed is passes, finding.reason
    assert key in finding.reason


@pytest.mark.parametrize(("key", "argument", "observed", "passes"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_not_prefix_negates_a_definite_result(key: str, argument: Any, observed: Answer,
                                              passes: bool) -> None:
    finding = judge(one("not_" + key, argument), observed)
    assert finding.passed is not passes, finding.reason
    assert finding.reason.startswith("not_" + key)


UNCHECKABLE = [
    ("ttft-not-measured", "max_ttft", "1s", answer("x", ttft_s=None), "not measured"),
    ("rate-not-measured", "min_tokens_per_second", 5, answer("x", tps=None), "not measured"),
    ("latency-not-measured", "max_latency", "1s", answer("x", total_s=None), "not measured"),
    ("no-number", "number", 4, answer("four"), "no number"),
    # a path and a value to compare, in an answer that is not JSON: nothing to look at
    ("json-path-in-not-json", "json", {"path": "$.status", "equals": "ok"},
     answer("status: ok"), "not valid JSON"),
    ("json-path-exists-in-not-json", "json", {"path": "$.status"}, answer("ok"),
     "not valid JSON"),
    ("json-path-equals-missing", "json", {"path": "$.status", "equals": "ok"},
     answer('{"state": "ok"}'), "path not found"),
]


@pytest.mark.parametrize(("key", "argument", "observed", "why"), [u[1:] for u in UNCHECKABLE],
                         ids=[u[0] for u in UNCHECKABLE])
@pytest.mark.parametrize("negated", [False, True], ids=["plain", "negated"])
def test_what_cannot_be_checked_fails_even_negated(key: str, argument: Any, observed: Answer,
                                                   why: str, negated: bool) -> None:
    finding = judge(one(("not_" if negated else "") + key, argument), observed)
    assert not finding.passed
    assert "cannot be checked" in finding.reason and why in finding.reason


def test_failure_reason_quotes_the_answer() -> None:
    finding = judge(one("icontains", "fail closed"), answer("It fails open."))
    assert finding.reason == 'icontains "fail closed": failed, answer "It fails open."'


BAD = [
    ("unknown-kind", {"startswith": "x"}, "expect.startswith: unknown expectation"),
    ("bad-regex", {"regex": "(unclosed"}, "expect.regex: invalid regular expression"),
    ("empty-string", {"contains": ""}, "expect.contains: expected a non-empty string"),
    ("bad-duration", {"max_ttft": "soon"}, 'expect.max_ttft: expected a duration like "30s"'),
    ("zero-latency", {"max_latency": 0}, "expect.max_latency: must be greater than zero"),
    ("negative-rate", {"min_tokens_per_second": -1},
     "expect.min_tokens_per_second: expected a positive number"),
    ("json-false", {"json": False}, "expect.json: expected true or a mapping"),
    ("json-bad-path", {"json": {"path": "a..b"}}, 'expect.json: malformed JSON path "a..b"'),
    ("number-text", {"number": "four"}, "expect.number: expected a number"),
    ("number-bad-tolerance", {"number": {"value": 4, "tolerance": -1}},
     "expect.number: tolerance must be a number >= 0"),
    ("not-a-mapping", ["contains", "x"], "expect: expected a mapping of expectations"),
    ("empty-mapping", {}, "expect: expected a mapping of expectations"),
]


@pytest.mark.parametrize(("raw", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_expectations_are_config_problems(raw: Any, message: str) -> None:
    problems = Problems()
    assert parse_expectations(raw, "expect", problems) == ()
    assert len(problems.lines) == 1 and problems.lines[0].startswith(message), problems.lines
