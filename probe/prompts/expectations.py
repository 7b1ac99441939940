"""Expectations as data: a table of kinds, each parsed at config load and judged on an answer.

Kinds: ``equals``, ``contains``, ``icontains``, ``regex``, ``json``, ``number``,
``max_latency``, ``max_ttft``, ``min_tokens_per_second``. A ``not_`` prefix negates a kind
(``not_contains: "open"``). Several expectations combine as all-of. Fail closed: a kind
that cannot be judged (no TTFT because the server did not stream, no number in the
answer) fails, negated or not.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probe.config.fields import Problems
from probe.durations import parse_duration
from probe.prompts.jsonpath import parse_path, resolve
from probe.prompts.model import Expectation

NEGATION = "not_"
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a chat check observed, in the terms expectations judge."""

    content: str
    total_s: float | None = None
    ttft_s: float | None = None  # None: the server did not stream
    tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    passed: bool
    reason: str  # says what was expected and what was seen


# A judge returns (True/False, what it saw), or (None, why it cannot judge).
Judge = Callable[[Any, Answer], tuple[bool | None, str]]


@dataclass(frozen=True, slots=True)
class Kind:
    parse: Callable[[Any], Any]  # raises ValueError: a config problem
    judge: Judge


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _regex(value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_text(value))
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        seconds = parse_duration(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f'expected a duration like "2s", got {value!r}')
    if seconds <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return seconds


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return float(value)


def _json_spec(value: Any) -> tuple[tuple[str | int, ...], bool, Any] | None:
    """``true`` (valid JSON) or ``{path, equals?}``: (path steps, has_equals, wanted)."""
    if value is True:
        return None
    if not isinstance(value, dict) or not set(value) <= {"path", "equals"} or "path" not in value:
        raise ValueError("expected true or a mapping {path: ..., equals: ...}")
    return parse_path(_text(value["path"])), "equals" in value, value.get("equals")


def _number_spec(value: Any) -> tuple[float, float]:
    if isinstance(value, dict):
        if not set(value) <= {"value", "tolerance"} or "value" not in value:
            raise ValueError("expected a number or a mapping {value: ..., tolerance: ...}")
        tolerance = value.get("tolerance", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise ValueError(f"tolerance must be a number >= 0, got {tolerance!r}")
        value, tol = value["value"], float(tolerance)
    else:
        tol = 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value), tol


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return json.dumps(flat if len(flat) <= limit else flat[: limit - 1] + "…", ensure_ascii=False)


def _seen(answer: Answer) -> str:
    return f"answer {_quote(answer.content)}"


def _unfenced(content: str) -> str:
    """Models often wrap JSON in a Markdown code fence; the fence is not the answer."""
    text = content.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _judge_json(spec: tuple[tuple[str | int, ...], bool, Any] | None,
                answer: Answer) -> tuple[bool | None, str]:
    try:
        document = json.loads(_unfenced(answer.content))
    except ValueError:
        if spec is not None:  # a path in what is not JSON cannot be looked at, negated or not
            return None, f"not valid JSON: {_seen(answer)}"
        return False, f"not valid JSON: {_seen(answer)}"
    if spec is None:
        return True, "valid JSON"
    steps, has_equals, wanted = spec
    found, value = resolve(document, steps)
    if not found:
        # no value to compare: uncheckable; a path asked for on its own is simply absent
        return (None if has_equals else False), \
            f"path not found in {_quote(json.dumps(document))}"
    shown = f"value {json.dumps(value)}"
    return (value == wanted if has_equals else True), shown


def _judge_number(spec: tuple[float, float], answer: Answer) -> tuple[bool | None, str]:
    match = _NUMBER.search(answer.content)
    if match is None:
        return None, f"no number in {_seen(answer)}"
    number = float(match.group())
    wanted, tolerance = spec
    return math.isclose(number, wanted, rel_tol=0, abs_tol=tolerance), f"number {number:g}"


def _at_most(observed: Callable[[Answer], float | None], what: str) -> Judge:
    def judge(limit: float, answer: Answer) -> tuple[bool | None, str]:
        value = observed(answer)
        if value is None:
            return None, f"{what} was not measured"
        return value <= limit, f"{what} {value:.3f}s"
    return judge


def _judge_rate(minimum: float, answer: Answer) -> tuple[bool | None, str]:
    if answer.tokens_per_s is None:
        return None, "tokens/s was not measured"
    return answer.tokens_per_s >= minimum, f"{answer.tokens_per_s:.1f} tokens/s"


KINDS: dict[str, Kind] = {
    "equals": Kind(_text, lambda want, a: (a.content.strip() == want, _seen(a))),
    "contains": Kind(_text, lambda want, a: (want in a.content, _seen(a))),
    "icontains": Kind(_text, lambda want, a: (want.casefold() in a.content.casefold(),
                                              _seen(a))),
    "regex": Kind(_regex, lambda pattern, a: (pattern.search(a.content) is not None, _seen(a))),
    "json": Kind(_json_spec, _judge_json),
    "number": Kind(_number_spec, _judge_number),
    "max_latency": Kind(_seconds, _at_most(lambda a: a.total_s, "total time")),
    "max_ttft": Kind(_seconds, _at_most(lambda a: a.ttft_s, "time to first token")),
    "min_tokens_per_second": Kind(_positive, _judge_rate),
}


def parse_expectations(raw: Any, path: str, problems: Problems) -> tuple[Expectation, ...]:
    """The ``expect:`` mapping, every problem reported with its path."""
    if not isinstance(raw, dict) or not raw:
        problems.add(path, "expected a mapping of expectations like {icontains: \"yes\"} "
                           f"(kinds: {', '.join(KINDS)}; prefix not_ to negate)")
        return ()
    out = []
    for key, value in raw.items():
        name = str(key)
        negated = name.startswith(NEGATION)
        kind = name[len(NEGATION):] if negated else name
        if kind not in KINDS:
            problems.add(f"{path}.{name}", f"unknown expectation (kinds: {', '.join(KINDS)}; "
                                           "prefix not_ to negate)")
            continue
        try:
            argument = KINDS[kind].parse(value)
        except ValueError as exc:
            problems.add(f"{path}.{name}", str(exc))
            continue
        out.append(Expectation(kind, argument, negated))
    return tuple(out)


def describe(expectation: Expectation) -> str:
    argument = expectation.argument
    if isinstance(argument, re.Pattern):
        argument = argument.pattern
    return f"{expectation.label} {json.dumps(argument, default=str, ensure_ascii=False)}"


def judge(expectation: Expectation, answer: Answer) -> Finding:
    passed, seen = KINDS[expectation.kind].judge(expectation.argument, answer)
    if passed is None:
        return Finding(False, f"{describe(expectation)}: cannot be checked, {seen}")
    if expectation.negated:
        passed = not passed
    return Finding(passed, f"{describe(expectation)}: {'passed' if passed else 'failed'}, {seen}")


def judge_all(expectations: tuple[Expectation, ...], answer: Answer) -> list[Finding]:
    """Every finding, in config order; the answer passes only if all passed (and there is
    at least one: nothing that cannot be checked passes)."""
    return [judge(e, answer) for e in expectations]
