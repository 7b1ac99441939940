"""Memory per pod of what the checks keep, in-process (no daemon, no load on the machine):
the config of ``bench/scale.py --checks default``, its jobs, a context per (endpoint, check)
as the prober makes them, the token meter a prompt makes, and the latest answer of each of
the ``models``, ``health``, ``vllm_metrics`` checks and the context fit on ``bench/www``.

    PYTHONPATH=$PWD python bench/checks_mem.py [--pods 1000 2000] [--top 25]

Traced twice (tracemalloc, the pods' objects alive), at each size; the difference divided
by the difference in pods is what one more pod holds, by file:line of the allocation.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from checks_cpu import WWW, Answers, run
from scale import daemon_config

from probe import config as probe_config
from probe.app import PLUGINS
from probe.check import CheckContext
from probe.core_checks import models
from probe.outcome import Observation, ProbeResult
from probe.prompts import budget, context
from probe.vllm import health, scrape

_NOW = datetime(2026, 12, 5, tzinfo=UTC)
CHECKS = {"models": models.check, "health": health.check, "vllm_metrics": scrape.check}


def hold(pods: int) -> list[Any]:
    """What the checks keep for ``pods`` default pods, kept alive by the returned list."""
    text = daemon_config(pods, "15s", "default", 8080, Path("/tmp/checks_mem.db"), 9464)
    cfg = probe_config.parse_config(text, {}, PLUGINS.config)
    jobs = PLUGINS.plan(cfg)
    client = Answers({"metrics": (WWW / "metrics.txt").read_bytes(), "health": b"",
                      "models": (WWW / "v1-models.json").read_bytes()})
    shared: dict[str, dict[str, Any]] = {}
    contexts: dict[tuple[str, str], CheckContext] = {}
    latest: dict[tuple[str, str], Observation] = {}
    for job in jobs:
        mine = shared.setdefault(job.endpoint.name, {})
        for check in job.checks:
            ctx = contexts.get((job.endpoint.name, check))
            if ctx is None:  # as the prober makes it (its durable dict is the state's)
                ctx = contexts[(job.endpoint.name, check)] = CheckContext(
                    shared=mine, durable={})
            ctx.params = job.params
            if check in CHECKS:
                coroutine: Coroutine[Any, Any, Observation] = CHECKS[check](
                    job.endpoint, client, ctx)  # type: ignore[arg-type]
                latest[(job.endpoint.name, check)] = run(coroutine)
            elif check.startswith("prompt:"):
                budget.meter(mine).reserve(60)
        if "context" in job.checks:
            answer = latest[(job.endpoint.name, "models")]
            row = ProbeResult(job.endpoint.name, job.endpoint.kind, "models", answer.outcome,
                              _NOW, 0.0, 1, job.endpoint.openai_base, answer.message,
                              answer.http_status, answer.details)
            latest[(job.endpoint.name, "context")] = context.from_models(
                job.endpoint, contexts[(job.endpoint.name, "context")], row)
    return [cfg, jobs, shared, contexts, latest]


def traced(pods: int) -> tuple[int, Counter[str]]:
    gc.collect()
    tracemalloc.start(1)
    kept = hold(pods)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    lines: Counter[str] = Counter()
    for stat in snapshot.statistics("lineno"):
        frame = stat.traceback[0]
        name = frame.filename.split("/probe/", 1)[-1] if "/probe/" in frame.filename \
            else frame.filename.rsplit("/", 2)[-1]
        lines[f"{name}:{frame.lineno}"] += stat.size
    del kept
    return total, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, nargs=2, default=[1000, 2000])
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    small, large = args.pods
    traced(50)  # imports, compiled regexes, caches of a fixed size
    (total_small, lines_small), (total_large, lines_large) = traced(small), traced(large)
    pods = large - small
    print(f"{(total_large - total_small) / pods:,.0f} bytes per pod "
          f"({total_small / 1e6:.1f} MB at {small} pods, {total_large / 1e6:.1f} MB at {large})")
    delta = Counter({k: lines_large.get(k, 0) - lines_small.get(k, 0)
                     for k in set(lines_small) | set(lines_large)})
    modules: Counter[str] = Counter()
    for name, size in delta.items():
        modules[name.rsplit(":", 1)[0]] += size
    for title, counter in (("by module", modules), ("by file:line", delta)):
        print(f"{title}:")
        for name, size in counter.most_common(args.top):
            print(f"  {size / pods:7,.0f} B/pod  {name}")


if __name__ == "__main__":
    main()
