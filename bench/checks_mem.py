"""Memory per pod of what the checks keep, in-process (no daemon, no load on the machine):
the config of ``bench/scale.py --checks default``, its jobs, a context per (endpoint, check)
as the prober makes them, the token meter a prompt makes, and the latest answer of each of
the ``models``, ``health``, ``vllm_metrics`` checks and the context fit on ``bench/www``.

    PYTHONPATH=$PWD python bench/checks_mem.py [--pods 1000 2000] [--top 25] [--results]

With ``--results``, also what the engine keeps of one result of each check (a prompt's as
nginx answers it): the state with /metrics' series cache, the ledger's baselines and the
prompt metrics. Traced twice (tracemalloc, the pods' objects alive), at each size; the
difference divided by the difference in pods is what one more pod holds, by file:line of
the allocation.

    PYTHONPATH=$PWD python bench/checks_mem.py --waiting 20000

What a run that waits for its slot holds (no pods' objects): the daemon's task and its
coroutines for ``--waiting`` runs of the default pod's jobs (as a start-up burst queues
them: the prompts', and the checks' and the context fit's), the slots all taken, per run.

    PYTHONPATH=$PWD python bench/checks_mem.py --garbage 1000

The cyclic garbage a prompt's streamed chat completion leaves (``bench/nginx.conf.in``
answers it, each pod its own host; the daemon's loop, uvloop): the daemon collects garbage
on a clock (``probe.process``), so a cycle that outlived half a second (a prompt whose
answer takes that long, or that a backlog slowed) waits up to 10 minutes, per run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
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
from probe.config.model import Config
from probe.core_checks import models
from probe.job import Job
from probe.ledger.baselines import Baselines
from probe.ledger.settings import PatternSettings
from probe.metrics import ProbeCollector
from probe.outcome import Observation, ProbeResult
from probe.prober import Prober
from probe.prompts import budget, chat, context
from probe.prompts.metrics import PromptMetrics
from probe.prompts.model import PROMPT_KEY
from probe.prompts.stream import ChatReply
from probe.state import FleetState
from probe.vllm import health, scrape

_NOW = datetime(2026, 12, 5, tzinfo=UTC)
CHECKS = {"models": models.check, "health": health.check, "vllm_metrics": scrape.check}


def prompt_answer(job: Job, check: str) -> Observation:
    """The prompt's answer as bench/nginx.conf.in streams it (one answer both accept)."""
    reply = ChatReply(200, 0.05, streamed=True, content="4. A validation failure fails closed.",
                      done=True, finish_reason="stop", ttft_s=0.01,
                      usage={"prompt_tokens": 20, "completion_tokens": 9})
    return chat.judge_reply(job.params[PROMPT_KEY], reply, (20, 9))


def judged(cfg: Config, jobs: list[Job], latest: dict[tuple[str, str], Observation]
           ) -> list[Any]:
    """What the engine keeps of one result per check: the state (its checks, verdicts, kinds
    of check and /metrics' series cache watching it), the ledger's baselines and the prompt
    metrics, each fed the results as the prober hands them on."""
    state = FleetState(PLUGINS.role_of)
    collector = ProbeCollector(state)
    state.configure(cfg, jobs)
    baselines = Baselines(PatternSettings())
    prompts = PromptMetrics()
    prompts.on_plan(cfg, jobs)
    planned = [(job.endpoint, check) for job in jobs for check in job.checks]
    for row, (e, check) in enumerate(planned):
        answer = latest[(e.name, check)]
        result = ProbeResult(e.name, e.kind, check, answer.outcome, _NOW, 0.01, 1,
                             e.display_url, answer.message, answer.http_status,
                             answer.details, PLUGINS.role_of(check))
        state.update(result, row)
        baselines.observe(result, row, e.name)
        prompts.observe(result, row)
    baselines.take()  # (handed to the ledger's writer)
    assert collector.series is not None
    collector.series.kinds.names()  # kinds' lines waiting to be written: as a scrape does
    return [state, collector, baselines, prompts]


def hold(pods: int, results: bool = False) -> list[Any]:
    """What the checks keep for ``pods`` default pods, kept alive by the returned list (with
    ``results``: and what the engine keeps of their results, ``judged``)."""
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
                latest[(job.endpoint.name, check)] = prompt_answer(job, check)
        if "context" in job.checks:
            answer = latest[(job.endpoint.name, "models")]
            row = ProbeResult(job.endpoint.name, job.endpoint.kind, "models", answer.outcome,
                              _NOW, 0.0, 1, job.endpoint.openai_base, answer.message,
                              answer.http_status, answer.details)
            latest[(job.endpoint.name, "context")] = context.from_models(
                job.endpoint, contexts[(job.endpoint.name, "context")], row)
    return [cfg, jobs, shared, contexts, latest, *(judged(cfg, jobs, latest) if results else ())]


def traced(pods: int, results: bool = False) -> tuple[int, Counter[str]]:
    gc.collect()
    tracemalloc.start(1)
    kept = hold(pods, results)
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


def waiting(runs: int) -> None:
    """Per run waiting for its slot: ``runs`` of each kind of the default pod's jobs
    (``{endpoint}/checks``, ``/context``, ``/prompt:*``), each a task as the daemon starts
    it (``Daemon._spawn``), queued behind a prober whose one slot is taken."""
    text = daemon_config(runs, "15s", "default", 8080, Path("/tmp/checks_mem.db"), 9464)
    cfg = probe_config.parse_config(text, {}, PLUGINS.config)
    jobs = PLUGINS.plan(cfg)
    state = FleetState(PLUGINS.role_of)
    state.configure(cfg, jobs)
    by_kind: dict[str, list[Any]] = {}
    for job in jobs:
        by_kind.setdefault(job.id.split("/", 1)[1].split(":", 1)[0], []).append(job)

    async def queue(kind: str) -> tuple[int, int]:
        prober = Prober(None, state, PLUGINS.resolve, 1, 1 << 20)  # type: ignore[arg-type]
        await prober._semaphore.acquire()  # the one slot: taken
        for job in by_kind[kind][:1]:  # first contexts, fixed costs
            prober.context(job, job.checks[0])
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.get_traced_memory()[0]
        tasks: dict[asyncio.Task[Any], Any] = {}
        for job in by_kind[kind]:
            tasks[asyncio.create_task(prober.run_job(job, time.time()))] = job
        for _ in range(5):  # each begins and waits for its slot
            await asyncio.sleep(0)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        prober.stopping.set()
        prober._semaphore.release()
        await asyncio.gather(*tasks)
        return held, len(tasks)

    for kind in sorted(by_kind):
        held, count = asyncio.run(queue(kind))
        print(f"  {held / count:7,.0f} B per waiting run of a {kind!r} job ({count:,} runs)")


def garbage(runs: int) -> None:
    """Cyclic garbage per prompt answer read and closed (see the module's docstring)."""
    import tempfile

    from scale import Nginx, pod_root

    from probe.net import make_client
    from probe.process import run_event_loop
    from probe.prompts.stream import post_chat

    async def answers(port: int) -> tuple[int, Counter[str]]:
        async with make_client(64) as client:
            async def one(i: int) -> None:
                reply = await post_chat(
                    client, f"{pod_root(i, port)}/v1/chat/completions",
                    {"Accept": "text/event-stream"},
                    chat.chat_body(cfg_prompt.messages, 16, "m", None), 1 << 20)
                assert reply.done, reply

            await one(0)
            gc.collect()
            gc.disable()
            tracemalloc.start(1)
            try:
                slots = asyncio.Semaphore(64)

                async def bounded(i: int) -> None:
                    async with slots:
                        await one(i)
                await asyncio.gather(*(bounded(i) for i in range(1, runs + 1)))
                held = tracemalloc.get_traced_memory()[0]
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                kinds = Counter(type(thing).__qualname__ for thing in gc.garbage)
                gc.set_debug(0)
                gc.garbage.clear()
                gc.collect()
                return held - tracemalloc.get_traced_memory()[0], kinds
            finally:
                tracemalloc.stop()
                gc.enable()

    text = daemon_config(1, "15s", "default", 8080, Path("/tmp/checks_mem.db"), 9464)
    cfg = probe_config.parse_config(text, {}, PLUGINS.config)
    cfg_prompt = next(job.params[PROMPT_KEY] for job in PLUGINS.plan(cfg)
                      if PROMPT_KEY in job.params)
    with tempfile.TemporaryDirectory() as tmp:
        nginx = Nginx(Path(tmp), False)
        try:
            left, kinds = run_event_loop(answers(nginx.port))
        finally:
            nginx.close()
    print(f"  {left / runs:7,.0f} B of cyclic garbage per prompt answer ({runs:,} answers); "
          "objects per answer: " + ", ".join(f"{name} {n / runs:.1f}"
                                             for name, n in kinds.most_common(6)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, nargs=2, default=[1000, 2000])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--results", action="store_true",
                        help="and what the state, its series cache, the baselines and the "
                        "prompt metrics keep of one result per check")
    parser.add_argument("--garbage", type=int, metavar="ANSWERS",
                        help="measure the cyclic garbage a prompt's answer leaves instead")
    parser.add_argument("--waiting", type=int, metavar="RUNS",
                        help="measure what a run waiting for its slot holds instead")
    args = parser.parse_args()
    if args.garbage:
        garbage(args.garbage)
        return
    if args.waiting:
        waiting(args.waiting)
        return
    small, large = args.pods
    traced(50, args.results)  # imports, compiled regexes, caches of a fixed size
    (total_small, lines_small), (total_large, lines_large) = \
        traced(small, args.results), traced(large, args.results)
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
