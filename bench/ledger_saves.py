"""CPU per result of keeping each endpoint's verdict (its streaks survive a restart): in the
event loop (``Ledger.changed`` for a result without a transition, and the save timer's
batches, each verdict encoded as JSON) and in the ledger's writer (``LedgerBook.write``: the
batch redacted and saved in one transaction on a real SQLite file).

The default pod's results are recorded once from the simulator by the real checks (as
``bench/publish.py`` does) and fed through a ``FleetState`` for ``--endpoints`` endpoints for
two rounds, not measured, so that each holds a default pod's verdict. Then ``--seconds`` of
simulated time are measured after ``--warm`` seconds of the same: every endpoint's results
(models, health, vllm_metrics and the context fit: 4 per ``--interval``, a pod's together;
10,000 pods x 4 per 15 s is 2,667 results a second), each handed to ``Ledger.changed`` as
the daemon hands a result without a transition. The ledger runs on a virtual event loop
whose clock is the simulated time, so its save timer fires when it asked to; the book's
batches are taken once per simulated second (the writer's batch interval) and written by
the writer's own code in this thread. CPU is ``time.thread_time``; the bench's own
bookkeeping (the same loop with a ledger that does nothing) is measured and subtracted.

    python bench/ledger_saves.py [--endpoints 10000] [--interval 15] [--seconds 300]

Copied into an older tree, the script measures that tree's ledger (one without a clock of
its own reads the loop's).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package
sys.path.insert(1, str(BENCH.parent))
from publish import KEY, KEY_ENV, config_text, recorded  # noqa: E402
from scale import machine  # noqa: E402

from probe import config as config_module  # noqa: E402
from probe.app import PLUGINS  # noqa: E402
from probe.ledger.book import LedgerBook  # noqa: E402
from probe.ledger.observer import Ledger  # noqa: E402
from probe.outcome import ProbeResult  # noqa: E402
from probe.secrets import Redactor  # noqa: E402
from probe.simulator import Fleet, PodSpec, Simulator  # noqa: E402
from probe.state import FleetState  # noqa: E402
from probe.verdict import EndpointVerdict  # noqa: E402


@dataclass(slots=True)
class Timer:
    callback: Callable[..., Any]
    args: tuple[Any, ...]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualLoop:
    """What the ledger asks of the running loop (``time``, ``call_later``), on simulated
    time: ``run_until`` fires the timers due by then, each at its own time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, Timer]] = []
        self.order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.now + delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(callback, args)
        heapq.heappush(self.timers, (when, next(self.order), timer))
        return timer

    def run_until(self, t: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= t:
            when, _, timer = heapq.heappop(timers)
            self.now = when
            if not timer.cancelled:
                timer.callback(*timer.args)
        self.now = t


class InlineBook(LedgerBook):
    """The ledger's book with no thread of its own: ``write_batch`` takes what was submitted
    and writes it as the writer thread would (one transaction)."""

    def start(self) -> None:
        pass

    def write_batch(self, conn: Any) -> int:
        items, _ = self._inbox.take(block=False)
        self.accept(items)
        kept = len(self._backlog.states)
        if self.backlog_size():
            self.write(conn)
            self.written(conn)
        return kept


class Idle:
    """A ledger that does nothing: the bench's own bookkeeping."""

    def changed(self, *_: Any) -> list[Any]:
        return []


Visit = tuple[float, str, EndpointVerdict]  # a pod's results at this simulated time


def verdicts(endpoints: int) -> tuple[dict[str, EndpointVerdict], int]:
    """Each endpoint's verdict after two rounds of the default pod's recorded results, and
    how many results a pod has per round."""
    env = {KEY_ENV: KEY}
    fleet = Fleet()
    fleet.add_pod("pod", PodSpec())
    with tempfile.TemporaryDirectory() as tmp, Simulator(fleet) as sim:
        config = config_module.parse_config(
            config_text(sim, endpoints, Path(tmp) / "probe.db", True), env, PLUGINS.config)
        pod = asyncio.run(recorded(config, env))
    jobs = PLUGINS.plan(config)
    state = FleetState(PLUGINS.role_of)
    state.configure(config, jobs)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    row = 0
    for k in range(2):
        for e in config.endpoints:
            for r in pod:
                row += 1
                state.update(_moved(r, e.name, start + timedelta(seconds=15 * k)), row)
    out = {}
    for e in config.endpoints:
        verdict = state.verdict(e.name)
        assert verdict is not None
        out[e.name] = verdict
    return out, len(pod)


def _moved(r: ProbeResult, name: str, at: datetime) -> ProbeResult:
    return replace(r, endpoint=name, started_at=at)


def schedule(kept: dict[str, EndpointVerdict], interval_s: float, begin: float,
             seconds: float) -> list[list[Visit]]:
    """The pods' visits per simulated second from ``begin`` for ``seconds``: each pod once
    per interval, the fleet spread evenly over it."""
    names = list(kept)
    per_second: list[list[Visit]] = [[] for _ in range(int(seconds))]
    rounds = int(seconds / interval_s) + 1
    for k in range(rounds):
        for i, name in enumerate(names):
            t = begin + k * interval_s + interval_s * i / len(names)
            second = int(t - begin)
            if second < len(per_second):
                per_second[second].append((t, name, kept[name]))
    return per_second


def feed(ledger: Any, loop: VirtualLoop, book: InlineBook | None, conn: Any,
         seconds: list[list[Visit]], results_per_visit: int) -> tuple[float, float, int]:
    """(loop CPU, writer CPU, verdicts kept) over ``seconds``."""
    changed = ledger.changed
    loop_cpu = writer_cpu = 0.0
    kept = 0
    checks = range(results_per_visit)
    for second in seconds:
        t0 = time.thread_time()
        for t, name, verdict in second:
            loop.run_until(t)
            for _ in checks:
                changed(name, [], verdict)
        if second:
            loop.run_until(second[-1][0])
        loop_cpu += time.thread_time() - t0
        if book is not None:
            t0 = time.thread_time()
            kept += book.write_batch(conn)
            writer_cpu += time.thread_time() - t0
    return loop_cpu, writer_cpu, kept


def run(args: argparse.Namespace) -> None:
    kept, per_visit = verdicts(args.endpoints)
    rate = args.endpoints * per_visit / args.interval
    print(machine())
    print(f"{args.endpoints} endpoints, {per_visit} results each per {args.interval:g}s "
          f"({rate:,.0f} results/s); {args.warm:g}s warm-up, {args.seconds:g}s measured "
          f"(simulated), best of {args.repeat}")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            loop = VirtualLoop()
            asyncio.events._set_running_loop(loop)  # type: ignore[arg-type]
            try:
                book = InlineBook(Path(tmp) / "probe.db",
                                  redact=Redactor([KEY_ENV], {KEY_ENV: KEY}))
                ledger = Ledger(book)
                ledger.clock = loop.time  # an older ledger has no clock: it reads the loop's
                conn = book.connect()
                plan = schedule(kept, args.interval, 0.0, args.warm + args.seconds)
                warm = int(args.warm)
                feed(ledger, loop, book, conn, plan[:warm], per_visit)
                loop_cpu, writer_cpu, saved = feed(ledger, loop, book, conn, plan[warm:],
                                                   per_visit)
                idle_loop = VirtualLoop()
                idle_cpu, _, _ = feed(Idle(), idle_loop, None, None, plan[warm:], per_visit)
                conn.close()
            finally:
                asyncio.events._set_running_loop(None)
        results = sum(len(s) for s in plan[warm:]) * per_visit
        figures = {"loop": (loop_cpu - idle_cpu) / results, "writer": writer_cpu / results,
                   "saved": saved / args.seconds}
        for key, value in figures.items():
            best[key] = min(best.get(key, value), value)
    share = rate * (best["loop"] + best["writer"])
    print(f"  verdicts saved per second: {best['saved']:8.1f}")
    print(f"  loop CPU per result:       {best['loop'] * 1e6:8.2f} us "
          f"(Ledger.changed and the save timer's encodes)")
    print(f"  writer CPU per result:     {best['writer'] * 1e6:8.2f} us "
          f"(LedgerBook.write: redact, save_states, commit)")
    print(f"  at {rate:,.0f} results/s: {share * 100:.2f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=10000)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds")
    parser.add_argument("--warm", type=float, default=150.0, help="simulated seconds")
    parser.add_argument("--seconds", type=float, default=300.0, help="simulated seconds")
    parser.add_argument("--repeat", type=int, default=3)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
