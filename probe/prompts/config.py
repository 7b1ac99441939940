"""Read the ``prompts:`` section and the per-endpoint keys for context fit and token budget.

Bounds come from the scope's variables: TOKENS_MIN and TOKENS_MAX bound every prompt's
``max_tokens``; MAX_TOKENS is the default ``max_tokens`` and the completion room a real
caller needs on top of ``required_context``. A prompt outside the bounds does not load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from probe.config.fields import Fields, Problems, env_int
from probe.config.model import KINDS, Config, ParseContext
from probe.prompts.expectations import parse_expectations
from probe.prompts.model import DEFAULT_KINDS, Message, Prompt, PromptSection, TokenBounds

PROMPT_KEYS = ("name", "prompt", "messages", "expect", "cross", "endpoints", "kinds", "interval",
               "max_tokens", "seed")
ROLES = ("system", "user", "assistant")
DEFAULT_INTERVAL_S = 300.0  # a prompt costs tokens: every 5 minutes unless told otherwise
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_bounds(env: Mapping[str, str], problems: Problems) -> TokenBounds:
    base = TokenBounds()
    values: dict[str, int] = {}
    for var, default in (("TOKENS_MIN", base.minimum), ("TOKENS_MAX", base.maximum),
                         ("MAX_TOKENS", base.default)):
        number = env_int(env, var, 1, problems)
        values[var] = default if number is None else number
    low, high, default = values["TOKENS_MIN"], values["TOKENS_MAX"], values["MAX_TOKENS"]
    if low > high:
        problems.add("env.TOKENS_MIN", f"TOKENS_MIN ({low}) is above TOKENS_MAX ({high})")
    elif not low <= default <= high:
        problems.add("env.MAX_TOKENS", f"MAX_TOKENS ({default}) is outside TOKENS_MIN..TOKENS_MAX "
                                       f"({low}..{high})")
    return TokenBounds(low, high, default)


def parse_section(raw: Any, path: str, problems: Problems,
                  context: ParseContext) -> PromptSection:
    bounds = parse_bounds(context.env, problems)
    if raw is None:
        return PromptSection(bounds=bounds)
    if not isinstance(raw, list):
        problems.add(path, "expected a list of prompts")
        return PromptSection(bounds=bounds)
    prompts: list[Prompt] = []
    references: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        f = Fields(item, f"{path}[{index}]", problems, PROMPT_KEYS)
        name = f.text("name", required=True)
        if name is not None and not _NAME.match(name):
            f.fail("name", f'"{name}" may only hold letters, digits, "_", "." and "-"')
            name = None
        if name is not None:
            if name in seen:
                f.fail("name", f'duplicate prompt name "{name}" (also {path}[{seen[name]}])')
            seen.setdefault(name, index)
        prompt = _prompt(f, name, bounds)
        if prompt is not None and prompt.endpoints is not None:
            references.extend((f"{f.path}.endpoints", e) for e in prompt.endpoints)
        if prompt is not None:
            prompts.append(prompt)
    return PromptSection(tuple(prompts), bounds, tuple(references))


def _prompt(f: Fields, name: str | None, bounds: TokenBounds) -> Prompt | None:
    """The prompt, or None when any of its fields had a problem (already reported)."""
    problems_before = len(f.problems.lines)
    messages = _messages(f)
    expect = None
    if "expect" in f.raw:
        expect = parse_expectations(f.raw["expect"], f"{f.path}.expect", f.problems)
    else:
        f.fail("expect", "required field is missing (a prompt without expectations "
                         "cannot fail)")
    cross = f.text("cross", required=True)
    interval = f.duration("interval", DEFAULT_INTERVAL_S)
    max_tokens = f.integer("max_tokens", bounds.default, minimum=1)
    if max_tokens is not None and not bounds.minimum <= max_tokens <= bounds.maximum:
        f.fail("max_tokens", f"must be within TOKENS_MIN..TOKENS_MAX ({bounds.minimum}.."
                             f"{bounds.maximum}), got {max_tokens}")
        max_tokens = None
    endpoints = f.string_list("endpoints", ()) if f.has("endpoints") else None
    if f.has("endpoints") and f.raw["endpoints"] == []:
        f.fail("endpoints", "an empty list runs the prompt nowhere; leave it out to run "
                            "everywhere")
    kinds = f.string_list("kinds", DEFAULT_KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        f.fail("kinds", f'unknown kind "{unknown[0]}" (expected some of: {", ".join(KINDS)})')
    elif f.has("kinds") and not kinds:
        f.fail("kinds", "an empty list runs the prompt nowhere")
    elif f.has("kinds") and endpoints is not None:
        f.fail("kinds", "has no effect with endpoints: (the prompt runs on those)")
    seed = f.raw.get("seed", 0)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        f.fail("seed", f"expected a whole number or null, got {seed!r}")
    if len(f.problems.lines) > problems_before or None in (name, messages, expect, cross,
                                                               max_tokens):
        return None
    assert name is not None and messages is not None and expect is not None
    return Prompt(name=name, messages=messages, expect=expect, cross=cross,
                  interval_s=interval, max_tokens=max_tokens, endpoints=endpoints, seed=seed,
                  kinds=kinds)


def _messages(f: Fields) -> tuple[Message, ...] | None:
    if f.has("prompt") and f.has("messages"):
        f.fail("messages", 'give either "prompt" or "messages", not both')
        return None
    if f.has("prompt"):
        text = f.text("prompt")
        return (Message("user", text),) if text is not None else None
    raw = f.raw.get("messages")
    if raw is None:
        f.fail("prompt", 'required field is missing (or give "messages")')
        return None
    if not isinstance(raw, list) or not raw:
        f.fail("messages", "expected a non-empty list of {role, content}")
        return None
    out = []
    for index, item in enumerate(raw):
        m = Fields(item, f"{f.path}.messages[{index}]", f.problems, ("role", "content"))
        role, content = m.text("role", required=True), m.text("content", required=True)
        if role is not None and role not in ROLES:
            m.fail("role", f'unknown role "{role}" (expected one of: {", ".join(ROLES)})')
            role = None
        if role is None or content is None:
            return None
        out.append(Message(role, content))
    if not any(m.role == "user" for m in out):
        f.fail("messages", "needs at least one user message")
        return None
    return tuple(out)


def required_context(f: Fields) -> int | None:
    value: int | None = f.integer("required_context", minimum=1)
    checks = f.raw.get("checks")
    named = [c for c in ("context", "context_active") if isinstance(checks, list) and c in checks]
    if named and not f.has("required_context"):
        f.fail("checks", f'check "{named[0]}" needs required_context')
    return value


def token_budget_per_hour(f: Fields) -> int | None:
    value: int | None = f.integer("token_budget_per_hour", minimum=1)
    return value


def active_context_probe(f: Fields) -> float | None:
    """How often to send a prompt of ``required_context`` tokens (off unless set)."""
    interval: float | None = f.duration("active_context_probe")
    if interval is not None and not f.has("required_context"):
        f.fail("active_context_probe", "needs required_context (the prompt size to send)")
        return None
    return interval


def check_references(config: Config, problems: Problems) -> None:
    section = PromptSection.of(config)
    known = [e.name for e in config.endpoints]
    for path, name in section.references:
        if name not in known:
            problems.add(path, f'unknown endpoint "{name}" (known: {", ".join(known)})')
