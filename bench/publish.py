"""CPU and garbage per result of ``Prober.publish`` (everything a result goes through after
its check returned, but the store), wired as the daemon wires it at 2,000 default pods.

The default pod's results (models, health, vllm_metrics and the context fit judged from the
models answer) are recorded once from the simulator by the real checks, then published for
2,000 endpoints, round after round (15 s apart), into a ``Prober`` with what the daemon
attaches: the state with /metrics' series cache watching it, the vantage gate, the vLLM
gauges, the status page's uptime, the incident tracker and the ledger (its book a stub: the
writer's thread is not this path) with its baselines. A few results change: each round one
pod in 200 fails its health check (down after three, then back up). The ledger's save timer
fires once per simulated second, on a clock of simulated seconds (``probe.ledger.observer``:
each endpoint's verdict kept at most once a minute, in its slot).

    python bench/publish.py [--endpoints 2000] [--rounds 4] [--repeat 5] [--no-secret]

Prints, best of ``--repeat``: CPU per result (time.process_time), the young generation's
objects per result (made and still alive: what the collector on its clock walks), and the
CPU of collecting them per result (the young generation is collected after each simulated
second, as the daemon's clock collects it every half second: ``probe.process``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probe import config as config_module  # noqa: E402
from probe.app import PLUGINS  # noqa: E402
from probe.engine import probing  # noqa: E402
from probe.incidents.settings import IncidentSettings, VantageSettings  # noqa: E402
from probe.incidents.tracker import IncidentTracker  # noqa: E402
from probe.incidents.vantage import Vantage  # noqa: E402
from probe.ledger.baselines import Baselines  # noqa: E402
from probe.ledger.observer import Ledger  # noqa: E402
from probe.ledger.settings import PatternSettings  # noqa: E402
from probe.metrics import ProbeCollector  # noqa: E402
from probe.outcome import Outcome, ProbeResult  # noqa: E402
from probe.prober import Prober  # noqa: E402
from probe.secrets import Redactor  # noqa: E402
from probe.simulator import Fleet, PodSpec, Simulator  # noqa: E402
from probe.state import FleetState  # noqa: E402
from probe.status.uptime import UptimeBook  # noqa: E402
from probe.verdict import EndpointVerdict, Transition  # noqa: E402
from probe.vllm.metrics import EngineMetrics  # noqa: E402

KEY_ENV = "BENCH_PROBE_KEY"
KEY = "bench-made-up-key-0123456789abcdef"  # not a real key: the redactor's work per result
INTERVAL_S = 15.0
FAILING_EVERY = 200  # one pod in this many fails its health check in a round


def config_text(sim: Simulator, n: int, db: Path, secret: bool) -> str:
    key = f"api_key_env: {KEY_ENV}" if secret else "api_key_env: null"
    lines = [f'runpod: {{proxy_url: "{sim.proxy_template}"}}',
             f"defaults: {{interval: 15s, timeout: 5s, tries: 1, {key}, "
             "checks: [models, health, vllm_metrics]}",
             f'storage: {{path: "{db}"}}',
             'metrics: {listen: "127.0.0.1:0"}',
             'vantage: {reference_urls: ["http://127.0.0.1:9/vantage"]}',
             "endpoints:"]
    lines += [f"  - {{name: pod-{i:05d}, kind: pod, pod_id: pod, required_context: 8000}}"
              for i in range(n)]
    return "\n".join(lines) + "\n"


async def recorded(config: Any, env: Mapping[str, str]) -> list[ProbeResult]:
    """The first pod's results, from the simulator by the real checks, unpublished."""
    kept: list[ProbeResult] = []
    async with probing(config, PLUGINS, env=env) as prober:
        prober.publish = lambda result: kept.append(result) or result  # type: ignore
        for job in PLUGINS.plan(config):
            if job.endpoint.name == config.endpoints[0].name:
                await prober.run_job(job)
    return kept


class SimulatedSeconds:
    """The ledger's clock: one simulated second per second of results (``feed``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StubBook:
    """The ledger's book without its writer: what it is handed is counted, not written."""

    states: dict[str, Any] = {}  # kept from before a restart: none

    def __init__(self) -> None:
        self.kept = 0
        self.drafts = 0

    def submit(self, states: Mapping[str, Any], drafts: Sequence[Any]) -> None:
        self.kept += len(states)
        self.drafts += len(drafts)

    def keep_hours(self, *_: Any) -> None:
        pass


def wired(config: Any, jobs: Sequence[Any], env: Mapping[str, str], db: Path
          ) -> tuple[Prober, Ledger, StubBook]:
    """A prober with what the daemon attaches (``probe.daemon.Daemon._attach``)."""
    state = FleetState(PLUGINS.role_of)
    state.configure(config, jobs)
    ProbeCollector(state)  # its series cache watches the state
    prober = Prober(None, state, PLUGINS.resolve, 100, 1 << 20, None, env,  # type: ignore
                    Redactor(config.secret_env_names(), env))
    vantage = Vantage(VantageSettings.of(config), (), None)  # type: ignore[arg-type]
    prober.gates.append(vantage.gate)
    engine = EngineMetrics()
    uptime = UptimeBook(db)

    def observe(result: ProbeResult, _row: int | None) -> None:  # status's observer
        verdict = state.verdict(result.endpoint)
        if verdict is not None:
            uptime.observe(result.endpoint, str(verdict.state), result.started_at)

    prober.observers += [engine.observe, observe]
    tracker = IncidentTracker(IncidentSettings.of(config), lambda *_: None, state.verdict)
    tracker.plan(config)

    def incidents(result: ProbeResult, _row: int | None, transitions: list[Transition],
                  verdict: EndpointVerdict | None) -> None:
        if transitions:
            tracker.update(result.endpoint, verdict, result.started_at)

    book = StubBook()
    ledger = Ledger(book, baselines=Baselines(PatternSettings()),  # type: ignore[arg-type]
                    clock=SimulatedSeconds())
    # no event loop here: ``feed`` calls the save timer's callback once a simulated second
    ledger._save_soon = lambda: None  # type: ignore[method-assign]
    prober.judged += [incidents, ledger.judged]
    return prober, ledger, book


def results_of(pod: list[ProbeResult], names: list[str], start: datetime,
               failing: Callable[[int], bool]) -> list[list[ProbeResult]]:
    """One round: each pod's results (its name and time), per simulated second."""
    per_second: list[list[ProbeResult]] = [[] for _ in range(int(INTERVAL_S))]
    for i, name in enumerate(names):
        at = start + timedelta(seconds=INTERVAL_S * i / len(names))
        for r in pod:
            # each pod's own URL (the redactor keeps a bounded set of texts known clean)
            changed = replace(r, endpoint=name, started_at=at,
                              url=r.url.replace("/proxy/pod-", f"/proxy/{name}-"))
            if r.check == "health" and failing(i):
                changed = replace(changed, outcome=Outcome.TIMEOUT, http_status=None,
                                  message="timed out after 5s")
            per_second[int(INTERVAL_S * i / len(names))].append(changed)
    return per_second


def run(args: argparse.Namespace) -> None:
    env = {KEY_ENV: KEY}
    fleet = Fleet()
    fleet.add_pod("pod", PodSpec())
    with tempfile.TemporaryDirectory() as tmp, Simulator(fleet) as sim:
        db = Path(tmp) / "probe.db"
        config = config_module.parse_config(config_text(sim, args.endpoints, db,
                                                        not args.no_secret),
                                            env, PLUGINS.config)
        jobs = PLUGINS.plan(config)
        pod = asyncio.run(recorded(config, env))
    print(f"{len(pod)} results per pod: " + ", ".join(f"{r.check} {r.outcome}" for r in pod))
    names = [e.name for e in config.endpoints]
    prober, ledger, book = wired(config, jobs, env, db)
    clock = ledger.clock
    assert isinstance(clock, SimulatedSeconds)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    rounds = [results_of(pod, names, start + timedelta(seconds=INTERVAL_S * k), lambda i, k=k:
                         i % FAILING_EVERY == 0 and k % 8 in (2, 3, 4, 5))
              for k in range(2 + args.rounds * args.repeat)]
    publish = prober.publish

    def feed(batch: list[list[list[ProbeResult]]]) -> tuple[int, float, int, float]:
        """Publish ``batch`` second by second, collecting the young generation after each
        second as the daemon's clock does: (results, CPU of publishing them, objects the
        collections walked, CPU of the collections)."""
        n, young, cpu, collecting = 0, 0, 0.0, 0.0
        for round_ in batch:
            for second in round_:
                t0 = time.process_time()
                for result in second:
                    publish(result)
                clock.now += 1.0
                ledger.save_due()
                cpu += time.process_time() - t0
                n += len(second)
                young += len(gc.get_objects(0))  # made, alive, not yet collected
                t0 = time.process_time()
                gc.collect(0)
                collecting += time.process_time() - t0
        return n, cpu, young, collecting

    feed(rounds[:2])  # every check's first result, every span begun
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu, young, collect = [], [], []
    for k in range(args.repeat):
        n, spent, walked, collecting = feed(
            rounds[2 + k * args.rounds: 2 + (k + 1) * args.rounds])
        cpu.append(spent / n)
        young.append(walked / n)
        collect.append(collecting / n)
        gc.collect()
    print(f"{args.endpoints} endpoints, {n} results per repeat "
          f"({book.kept} verdicts kept, {book.drafts} entries in all), best of {args.repeat}:")
    print(f"  publish CPU per result: {min(cpu) * 1e6:7.1f} us   (all: "
          + " ".join(f"{c * 1e6:.1f}" for c in cpu) + ")")
    print(f"  young objects per result: {min(young):6.1f}   "
          f"collect(0) CPU per result: {min(collect) * 1e6:.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per repeat")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-secret", action="store_true",
                        help="no key configured (the redactor has nothing to look for)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
