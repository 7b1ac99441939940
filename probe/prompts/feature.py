"""Registers this feature at the spine's extension points; imported by
``probe.config.features.register_features`` (importing it twice registers once)."""

from __future__ import annotations

from probe import daemon, metrics, scheduler
from probe.config import features
from probe.prompts import config, plan, prometheus

features.ENV_SECTIONS["prompts"] = config.parse_section
features.ENDPOINT_KEYS["required_context"] = config.required_context
features.ENDPOINT_KEYS["token_budget_per_hour"] = config.token_budget_per_hour
features.ENDPOINT_KEYS["active_context_probe"] = config.active_context_probe
features.VALIDATORS.append(config.check_references)
scheduler.PLANNERS.append(plan.prompt_jobs)
metrics.PROVIDERS.append(prometheus.provide)
daemon.STARTUP_HOOKS.append(prometheus.attach)
