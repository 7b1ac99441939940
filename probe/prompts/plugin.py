"""The governed-prompts feature as a value: the ``prompts:`` section and the context-fit and
budget keys, the prompt and context checks and their schedule, and the prompt series on
/metrics."""

from __future__ import annotations

from probe.check import CheckSpec
from probe.config.model import ConfigExtension
from probe.features import Attachment, Feature, Host
from probe.prompts import chat, config, context, plan
from probe.prompts.metrics import PromptMetrics
from probe.prompts.model import SECTION


def start(host: Host) -> Attachment:
    metrics = PromptMetrics()
    host.register(metrics)
    host.observe(metrics.observe)
    return Attachment(on_plan=metrics.on_plan)


FEATURE = Feature(
    name="prompts",
    config=ConfigExtension(
        sections={SECTION: config.parse_section},
        endpoint_keys={"required_context": config.required_context,
                       "token_budget_per_hour": config.token_budget_per_hour,
                       "active_context_probe": config.active_context_probe},
        validators=(config.check_references,),
    ),
    checks=(CheckSpec("context", context.check),
            CheckSpec("context_active", context.check_active),
            CheckSpec("prompt", chat.check, family=True)),
    planners=(plan.prompt_jobs,),
    startup=(start,),
)
