"""Governed test prompts, context fit and token budget: registers this feature's config
keys, planner, metrics and daemon hook at the spine's extension points."""

from __future__ import annotations


def _register() -> None:
    # Imported here, not at module level: importing a submodule binds its name in this
    # package's namespace (``probe.prompts.metrics`` would shadow ``probe.metrics``).
    import probe.daemon
    import probe.metrics
    import probe.scheduler
    from probe.config import features
    from probe.prompts import config, plan, prometheus

    features.ENV_SECTIONS["prompts"] = config.parse_section
    features.ENDPOINT_KEYS["required_context"] = config.required_context
    features.ENDPOINT_KEYS["token_budget_per_hour"] = config.token_budget_per_hour
    features.ENDPOINT_KEYS["active_context_probe"] = config.active_context_probe
    features.VALIDATORS.append(config.check_references)
    probe.scheduler.PLANNERS.append(plan.prompt_jobs)
    probe.metrics.PROVIDERS.append(prometheus.provide)
    probe.daemon.STARTUP_HOOKS.append(prometheus.attach)


_register()
