"""Every check by name. Adding a kind of check is one module plus one line here."""

from __future__ import annotations

from probe.checks import chat, context, models
from probe.checks.base import CheckFn

CHECKS: dict[str, CheckFn] = {
    "models": models.check,
    "context": context.check,
    "context_active": context.check_active,
}

# Checks named "<family>:<parameter>" (e.g. "prompt:arithmetic"): one function per family;
# the parameter's definition travels with the job's endpoint (see probe.prompts.plan).
FAMILIES: dict[str, CheckFn] = {
    "prompt": chat.check,
}


def resolve(name: str) -> CheckFn:
    """The function behind a check name; KeyError for a name nothing registered."""
    if name in CHECKS:
        return CHECKS[name]
    family, sep, _ = name.partition(":")
    if sep and family in FAMILIES:
        return FAMILIES[family]
    raise KeyError(name)
