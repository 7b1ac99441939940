"""Schedule prompts and context-fit checks: one job per prompt × endpoint, each at the
prompt's own interval, and the context checks of every endpoint with ``required_context``.

A job's endpoint carries what its parameterised check needs (the prompt; the completion
room MAX_TOKENS), so checks stay ``check(endpoint, client, ctx)`` with no global lookup.
"""

from __future__ import annotations

from dataclasses import replace

from probe.config.model import Config, Endpoint
from probe.prompts.model import COMPLETION_KEY, PROMPT_KEY, PromptSection
from probe.scheduler import Job


def section_of(config: Config) -> PromptSection:
    section = config.sections.get("prompts")
    return section if isinstance(section, PromptSection) else PromptSection()


def with_extra(endpoint: Endpoint, key: str, value: object) -> Endpoint:
    return replace(endpoint, extra={**endpoint.extra, key: value})


def prompt_jobs(config: Config) -> list[Job]:
    section = section_of(config)
    jobs = []
    for endpoint in config.endpoints:
        for prompt in section.prompts:
            if prompt.runs_on(endpoint.name):
                jobs.append(Job(f"{endpoint.name}/{prompt.check_name}",
                                with_extra(endpoint, PROMPT_KEY, prompt), (prompt.check_name,),
                                prompt.interval_s))
        if endpoint.extra.get("required_context") is None:
            continue
        sized = with_extra(endpoint, COMPLETION_KEY, section.bounds.default)
        if "context" not in endpoint.checks:
            jobs.append(Job(f"{endpoint.name}/context", sized, ("context",), endpoint.interval_s))
        active_every = endpoint.extra.get("active_context_probe")
        if active_every and "context_active" not in endpoint.checks:
            jobs.append(Job(f"{endpoint.name}/context_active", sized, ("context_active",),
                            float(active_every)))
    return jobs
