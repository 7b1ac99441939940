"""Every check by name. Adding a kind of check is one module plus one line here.

``POLICIES`` maps a check to a rewrite of its final verdict, applied by the runner after
retries: checks that ask RunPod's API instead of the endpoint report "could not ask" as
unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from probe import control_plane
from probe.checks import chat, context, health, models, queue, roundtrip, vllm_metrics
from probe.checks.base import CheckFn
from probe.outcome import Verdict

CHECKS: dict[str, CheckFn] = {
    "models": models.check,
    "queue": queue.check,
    "roundtrip": roundtrip.check,
    "context": context.check,
    "context_active": context.check_active,
    "health": health.check,
    "vllm_metrics": vllm_metrics.check,
}

POLICIES: dict[str, Callable[[Verdict], Verdict]] = {
    "queue": control_plane.as_unknown,
    "roundtrip": control_plane.as_unknown,
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
