"""Schedule prompts and context-fit checks: one job per prompt × endpoint, each at the
prompt's own interval, and the context checks of every endpoint with ``required_context``.

A job carries what its parameterised check needs in ``Job.params`` (the prompt; the
completion room MAX_TOKENS), so checks stay ``check(endpoint, client, ctx)`` and read
``ctx.params``.
"""

from __future__ import annotations

from probe.config.model import Config
from probe.job import Job
from probe.prompts.model import COMPLETION_KEY, PROMPT_KEY, ContextSettings, PromptSection


def prompt_jobs(config: Config) -> list[Job]:
    section = PromptSection.of(config)
    # One checks tuple and one params mapping per prompt, and one for the context checks,
    # shared by the jobs of every endpoint (checks only read ``ctx.params``): a job per
    # prompt and endpoint is kept for the daemon's life, and each held its own (about
    # 300 bytes a default pod).
    prompts = [(prompt, (prompt.check_name,), {PROMPT_KEY: prompt})
               for prompt in section.prompts]
    sized = {COMPLETION_KEY: section.bounds.default}
    jobs = []
    for endpoint in config.endpoints:
        for prompt, checks, params in prompts:
            if prompt.runs_on(endpoint):
                jobs.append(Job(f"{endpoint.name}/{checks[0]}", endpoint, checks,
                                prompt.interval_s, params=params))
        context = ContextSettings.of(endpoint)
        if context.required_context is None:
            continue
        if "context" not in endpoint.checks:
            jobs.append(Job(f"{endpoint.name}/context", endpoint, ("context",),
                            endpoint.interval_s, params=sized))
        if context.active_every_s and "context_active" not in endpoint.checks:
            jobs.append(Job(f"{endpoint.name}/context_active", endpoint, ("context_active",),
                            context.active_every_s, params=sized))
    return jobs
