"""What a config will do per day, before it runs: requests, tokens probing may spend, and
serverless jobs it submits (each wakes a worker and is billed). ``check-config`` prints it,
so a prompt that would run on a paid provider every minute is seen before it costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from probe.features import Plugins
from probe.job import Job

DAY_S = 86400.0


@dataclass(slots=True)
class Spend:
    requests: float = 0.0
    tokens: float = 0.0
    jobs: float = 0.0

    def add(self, runs: float, requests: int, tokens: int, jobs: int) -> None:
        self.requests += runs * requests
        self.tokens += runs * tokens
        self.jobs += runs * jobs


@dataclass(slots=True)
class DailyCost:
    total: Spend = field(default_factory=Spend)
    by_endpoint: dict[str, Spend] = field(default_factory=dict)


def daily_cost(jobs: Sequence[Job], plugins: Plugins) -> DailyCost:
    """Every planned check's cost times its runs per day (tokens and jobs: at most)."""
    out = DailyCost()
    for job in jobs:
        runs = DAY_S / job.interval_s
        spend = out.by_endpoint.setdefault(job.endpoint.name, Spend())
        derived = {check for check, _ in job.derived}  # judged from another's answer: free
        for check in job.checks:
            if check in derived:
                continue
            cost = plugins.resolve(check).cost(job.endpoint, job.params)
            for into in (spend, out.total):
                into.add(runs, cost.requests, cost.tokens, cost.jobs)
    return out


def describe(cost: DailyCost) -> list[str]:
    """One line for the whole config, then one per endpoint that spends tokens or jobs."""
    total = cost.total
    lines = [f"per day: {total.requests:,.0f} requests, up to {total.tokens:,.0f} tokens, "
             f"{total.jobs:,.0f} serverless jobs (each wakes a worker and is billed)"]
    for name, spend in sorted(cost.by_endpoint.items()):
        if spend.tokens or spend.jobs:
            lines.append(f"  {name}: up to {spend.tokens:,.0f} tokens, {spend.jobs:,.0f} "
                         "serverless jobs per day")
    return lines
