"""The checks' own CPU per answer: ``models``, ``health``, ``vllm_metrics`` and the context
fit judged from the models answer, on the answers ``bench/scale.py`` serves
(``bench/www/``), without the HTTP round trip (a client that hands back the body at once).

    PYTHONPATH=$PWD python bench/checks_cpu.py [--pods 2000] [--rounds 5] [--repeat 5]

Each round runs every check once per pod (each pod its own context, as in the daemon);
``--changing`` makes every /metrics answer differ from the pod's last one (its counters
move, as on a busy server) and every /v1/models answer too. Prints the best of
``--repeat`` in µs of CPU (``time.process_time``) per answer.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.core_checks import models
from probe.outcome import Observation, ProbeResult
from probe.prompts import context
from probe.vllm import health, scrape

WWW = Path(__file__).with_name("www")
HEADERS = httpx.Headers({"content-type": "text/plain"})
_NOW = datetime.now(UTC)


class Answers:
    """A client whose ``fetch`` answers at once with the body of its route."""

    def __init__(self, bodies: Mapping[str, bytes]) -> None:
        self.bodies = dict(bodies)

    async def fetch(self, url: str, headers: Mapping[str, str],
                    limit: int) -> tuple[int, bytes, httpx.Headers]:
        return 200, self.bodies[url.rsplit("/", 1)[1]], HEADERS


def run(coroutine: Coroutine[Any, Any, Observation]) -> Observation:
    """Drive a check whose client never waits: it ends on the first step."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("the check waited")


def pod(i: int) -> Endpoint:
    root = f"http://127.0.{i // 250}.{i % 250 + 1}:8080/p8000"
    return Endpoint(name=f"pod-{i:05d}", kind="pod", openai_base=f"{root}/v1", root_url=root,
                    interval_s=15.0, timeout_s=5.0, tries=1, retry_delay_s=0.0,
                    checks=("models", "health", "vllm_metrics"), pod_id=f"p{i}", port=8000,
                    extra={"required_context": 8000})


def moved(page: bytes, n: int) -> bytes:
    """The page with its token counters ``n`` higher (a new answer from a busy server)."""
    return page.replace(b"780178.0", str(780178 + n).encode() + b".0").replace(
        b"3027445.0", str(3027445 + 7 * n).encode() + b".0")


def measure(check: str, pods: int, rounds: int, changing: bool) -> float:
    """µs of CPU per answer of ``check`` over ``rounds`` rounds of ``pods`` pods."""
    page = (WWW / "metrics.txt").read_bytes()
    listing = (WWW / "v1-models.json").read_bytes()
    client = Answers({"metrics": page, "health": b"", "models": listing})
    endpoints = [pod(i) for i in range(pods)]
    contexts = [CheckContext() for _ in endpoints]
    shared: dict[str, Any] = {}
    run_one: Callable[[Endpoint, CheckContext], Observation]
    if check == "context":
        answers = [run(models.check(e, client, CheckContext()))  # type: ignore[arg-type]
                   for e in endpoints]
        rows = [ProbeResult(e.name, e.kind, "models", a.outcome, _NOW, 0.0, 1, e.openai_base,
                            a.message, a.http_status, a.details)
                for e, a in zip(endpoints, answers, strict=True)]
        by_name = {e.name: r for e, r in zip(endpoints, rows, strict=True)}

        def run_one(e: Endpoint, ctx: CheckContext) -> Observation:
            return context.from_models(e, ctx, by_name[e.name])
    else:
        function = {"models": models.check, "health": health.check,
                    "vllm_metrics": scrape.check}[check]

        def run_one(e: Endpoint, ctx: CheckContext) -> Observation:
            return run(function(e, client, ctx))  # type: ignore[arg-type]
    for ctx in contexts:
        ctx.shared = shared
    spent = 0.0
    for r in range(rounds):
        if changing:
            client.bodies["metrics"] = moved(page, r)
            client.bodies["models"] = listing.replace(b"1767225600", str(r).encode())
        start = time.process_time()
        for e, ctx in zip(endpoints, contexts, strict=True):
            run_one(e, ctx)
        spent += time.process_time() - start
    return spent / (rounds * pods) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--changing", action="store_true",
                        help="every answer differs from the pod's last one")
    args = parser.parse_args()
    total = 0.0
    for check in ("models", "health", "vllm_metrics", "context"):
        best = min(measure(check, args.pods, args.rounds, args.changing)
                   for _ in range(args.repeat))
        total += best
        print(f"{check:14s} {best:7.2f} µs CPU per answer")
    print(f"{'all four':14s} {total:7.2f} µs")


if __name__ == "__main__":
    main()
