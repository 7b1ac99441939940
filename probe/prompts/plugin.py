"""The governed-prompts feature as a value: the ``prompts:`` section and the context-fit and
budget keys, the prompt and context checks and their schedule, and the prompt series on
/metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probe.check import CheckCost, CheckSpec, worker_route
from probe.config.model import ConfigExtension, Endpoint
from probe.features import Attachment, Feature, Host
from probe.outcome import CheckRole
from probe.prompts import budget, chat, config, context, plan
from probe.prompts.metrics import PromptMetrics
from probe.prompts.model import PROMPT_KEY, SECTION, ContextSettings, Prompt


def prompt_cost(endpoint: Endpoint, params: Mapping[str, Any]) -> CheckCost:
    """One streamed chat completion: its prompt's tokens and max_tokens, at most."""
    prompt = params.get(PROMPT_KEY)
    if not isinstance(prompt, Prompt):
        return CheckCost()
    chars = sum(len(m.content) for m in prompt.messages)
    return CheckCost(tokens=budget.estimate_tokens(chars, prompt.max_tokens),
                     jobs=1 if endpoint.kind == "serverless" else 0)


def context_active_cost(endpoint: Endpoint, params: Mapping[str, Any]) -> CheckCost:
    """A prompt of required_context tokens and one completion token."""
    required = ContextSettings.of(endpoint).required_context or 0
    return CheckCost(tokens=required + 1, jobs=1 if endpoint.kind == "serverless" else 0)


def start(host: Host) -> Attachment:
    metrics = PromptMetrics(per_check=host.config.metrics.per_check,
                            native=host.config.metrics.native_histograms)
    return Attachment(collectors=(metrics,), observers=(metrics.observe,),
                      on_plan=metrics.on_plan)


FEATURE = Feature(
    name="prompts",
    config=ConfigExtension(
        sections={SECTION: config.parse_section},
        endpoint_keys={"required_context": config.required_context,
                       "token_budget_per_hour": config.token_budget_per_hour,
                       "active_context_probe": config.active_context_probe},
        validators=(config.check_references,),
    ),
    checks=(CheckSpec("context", context.check, cost=worker_route, reads="models",
                      derive=context.from_models),
            CheckSpec("context_active", context.check_active, cost=context_active_cost),
            CheckSpec("prompt", chat.check, family=True, cost=prompt_cost,
                      role=CheckRole.ANSWERS)),
    planners=(plan.prompt_jobs,),
    startup=(start,),
)
