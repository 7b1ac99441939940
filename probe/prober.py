"""Execute jobs: a job's checks in turns (one kept-alive connection per healthy pod; one slow
check never delays the endpoint's others past a short stagger), one check of one endpoint
never twice at once, a global bound on concurrent checks, and every result published to
state, store and observers (the ledger).

``publish`` is the one door every result goes through, so it is where secrets are scrubbed
(a server may echo the key back): what the state, the database, /metrics, the ledger and
the commands' output see is already clean."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from probe.attempts import observation_from_exception, run_check
from probe.check import CheckContext, CheckSpec
from probe.config.model import Config
from probe.job import Job
from probe.loopwatch import LoopWatch
from probe.net import ProbeClient
from probe.outcome import ProbeResult
from probe.secrets import Redactor
from probe.state import FleetState
from probe.verdict import EndpointVerdict, Transition

log = logging.getLogger(__name__)
Observer = Callable[[ProbeResult, int | None], None]
Judged = Callable[[ProbeResult, int | None, list[Transition], EndpointVerdict | None], Any]
Resolver = Callable[[str], CheckSpec]


class Recorder(Protocol):
    """Anything with ``record(result) -> row id`` (the SQLite store; None: not stored)."""

    def record(self, result: ProbeResult) -> int | None: ...


# Idle connections are kept at least this long, and longer than the longest endpoint
# interval (with slack for the spread and scheduling lag) so a pod's connection is still
# there at its next probe; never longer than KEEPALIVE_MAX_S.
KEEPALIVE_MIN_S, KEEPALIVE_SLACK, KEEPALIVE_MAX_S = 30.0, 1.5, 900.0


def keepalive_expiry_s(config: Config) -> float:
    """How long an idle connection is kept: 1.5x the longest interval among the endpoints'
    own checks (and the file's default interval), within [30 s, 15 min]."""
    intervals = [e.interval_s for e in config.endpoints]
    default = config.defaults.get("interval")
    if isinstance(default, int | float):
        intervals.append(float(default))
    longest = max(intervals, default=0.0)
    return min(max(KEEPALIVE_MIN_S, longest * KEEPALIVE_SLACK), KEEPALIVE_MAX_S)


# A scheduled run is skipped while checks wait for a slot and the last one to get its slot
# was over this share of its own interval late (``Prober._overloaded``).
ADMIT_LAG_SHARE = 0.5


class _Run:
    """One run of a job: when it was scheduled, whether its lag is counted yet, and its
    checks' turns (None: one check)."""

    __slots__ = ("scheduled_at", "lag_counted", "turns")

    def __init__(self, scheduled_at: float | None) -> None:
        self.scheduled_at = scheduled_at
        self.lag_counted = False
        self.turns: _Turns | None = None


class _Held:
    """The lock of one (endpoint, check) and how many hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Turns:
    """One run's checks in turns (``Prober.run_job``): ``next`` is the first not yet begun.
    The next check begins when the one before it has finished, or once that one has held
    its slot for the job's stagger (``due``): then beside it, in a task of its own that goes
    on with the rest. A check waiting for its slot is not slow (the probe is busy, not the
    pod): the stagger counts from the slot. One timer per run, armed when a check gets its
    slot and none is armed; in the common case it is cancelled unfired."""

    __slots__ = ("prober", "job", "asked", "run", "batches", "next", "timer", "slot_at",
                 "slotted", "helpers")

    def __init__(self, prober: Prober, job: Job, asked: tuple[str, ...], run: _Run) -> None:
        self.prober, self.job, self.asked, self.run = prober, job, asked, run
        self.batches: list[list[ProbeResult]] = [[] for _ in asked]
        self.next = 0
        self.timer: asyncio.TimerHandle | None = None
        self.slot_at = 0.0  # when the check that got its slot last got it (loop time)
        self.slotted = -1  # which one that was
        self.helpers: list[asyncio.Task[None]] = []

    async def take(self, first: int | None = None) -> None:
        """Run check ``first`` (claimed by ``due``), then each check not yet begun."""
        if first is not None:
            self.batches[first] = await self.prober._run_in_slot(self.job, self.asked[first],
                                                                 self.run)
        while self.next < len(self.asked):
            i = self.next
            self.next = i + 1
            self.batches[i] = await self.prober._run_in_slot(self.job, self.asked[i], self.run)

    def got_slot(self, name: str) -> None:
        """Check ``name`` has its slot and begins: its stagger counts from now."""
        loop = asyncio.get_running_loop()
        self.slot_at = loop.time()
        self.slotted = self.asked.index(name)
        if self.timer is None and self.next < len(self.asked):
            self.timer = loop.call_later(self.job.stagger_s, self.due)

    def due(self) -> None:
        """The timer: when the check begun last has held its slot for the stagger, the next
        begins beside it; while it still waits for its slot, nothing (``got_slot`` arms the
        timer again)."""
        self.timer = None
        if self.next >= len(self.asked) or self.slotted != self.next - 1:
            return
        loop = asyncio.get_running_loop()
        wait = self.slot_at + self.job.stagger_s - loop.time()
        if wait > 0:
            self.timer = loop.call_later(wait, self.due)
            return
        i = self.next
        self.next = i + 1
        self.helpers.append(asyncio.ensure_future(self.take(i)))


class Prober:
    def __init__(self, client: ProbeClient, state: FleetState, resolve: Resolver,
                 max_concurrent: int, max_body_bytes: int, recorder: Recorder | None = None,
                 env: Mapping[str, str] | None = None,
                 redactor: Redactor | None = None, watch: LoopWatch | None = None) -> None:
        self.client = client
        self.state = state
        self.resolve = resolve
        self.recorder = recorder
        self.env = env
        self.redactor = redactor or Redactor((), env)
        self.max_body_bytes = max_body_bytes
        # the event loop's stalls: a timeout during one is the probe's, not the endpoint's
        self.watch = watch
        self.observers: list[Observer] = []
        self.judged: list[Judged] = []
        # What a result is taken as before it is stored and judged (the probe's vantage)
        self.gates: list[Callable[[ProbeResult], ProbeResult]] = []
        # Set when the daemon stops: no check starts after it, and long checks (a round
        # trip) see it in their context and wind down.
        self.stopping = asyncio.Event()
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self.limit = max_concurrent
        # checks waiting for a slot, and how late the last scheduled one got its slot (in
        # its intervals): the probe's overload (``_overloaded``)
        self._waiting = 0
        self._slot_lateness = 0.0
        # (endpoint, check) -> held while that check runs (never twice at once); there only
        # while someone holds or waits for it: a lock per check of a large fleet kept ~1 kB
        # per pod
        self._held: dict[tuple[str, str], _Held] = {}
        self._contexts: dict[tuple[str, str], CheckContext] = {}
        self._durable_of = state.durable  # one bound method, shared by the contexts
        self._shared: defaultdict[str, dict[str, Any]] = defaultdict(dict)

    def allow(self, limit: int) -> None:
        """Let ``limit`` checks be in flight at once, when that is more than now (a plan grown
        by discovery, ``scheduler.max_concurrent: auto``). Never fewer while running: a
        smaller plan keeps the larger limit until a restart."""
        while self.limit < limit:
            self._semaphore.release()
            self.limit += 1

    def context(self, job: Job, check: str) -> CheckContext:
        key = (job.endpoint.name, check)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = CheckContext(
                self.max_body_bytes, env=self.env, shared=self._shared[job.endpoint.name],
                stopping=self.stopping, durable_of=self._durable_of, key=key)
        ctx.params = job.params
        return ctx

    async def run_job(self, job: Job, scheduled_at: float | None = None) -> list[ProbeResult]:
        """Run the job's checks in turns, each in a slot of the global bound: the next check
        starts when the one before it has finished, so a healthy pod's checks reuse one
        kept-alive connection (side by side, the default pod held three: 30,000 open files
        at 10,000 pods); or once the one before it has held its slot for the job's stagger
        (``Job.stagger_s``), beside it: a check that cannot pass (a timeout) never holds
        back the endpoint's other checks past the stagger, so each is judged every
        interval (``_Turns``). In the common case (every check answers within the stagger)
        the checks are awaited in sequence, with one timer per run and no task: less than a
        task per check (bench/run_path.py, a default pod's run: 94-102 us of CPU through
        gather, 78-81 us in turns over instant checks; 392-404 us and 289-323 us over
        HTTP). One check of one endpoint never runs twice at once. Once stopping, a check
        not yet begun does not start. A check the job judges from another's answer
        (``Job.derived``) makes no request: it is judged when that answer is in.
        Overloaded (``_overloaded``), a scheduled run does not start: it is counted, and
        the next run is due. Results in the job's order."""
        if scheduled_at is not None and self._overloaded():
            self.state.overload_skipped(len(job.checks))
            return []
        run = _Run(scheduled_at)
        if len(job.checks) == 1:
            return await self._run_in_slot(job, job.checks[0], run)
        if job.derived:
            derived = {check for check, _ in job.derived}
            asked = tuple(name for name in job.checks if name not in derived)
        else:
            asked = job.checks
        turns = _Turns(self, job, asked, run)
        if len(asked) > 1:
            run.turns = turns
        try:
            await turns.take()
            for helper in turns.helpers:  # checks begun beside a slow one: their results
                await helper
        except BaseException:
            for helper in turns.helpers:
                helper.cancel()
            raise
        finally:
            if turns.timer is not None:
                turns.timer.cancel()
            # the run and its turns refer to each other, and the helpers' tasks to the turns:
            # cycles, which the daemon's collection on a clock (probe.process) leaves for up
            # to 10 minutes once a run outlived half a second (a backlog), with every result
            # of the run
            run.turns, turns.helpers = None, []
        results = [result for batch in turns.batches for result in batch]
        if job.derived:
            order = {check: i for i, check in enumerate(job.checks)}
            results.sort(key=lambda result: order[result.check])
        return results

    async def _run_in_slot(self, job: Job, name: str, run: _Run) -> list[ProbeResult]:
        key = (job.endpoint.name, name)
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        held.users += 1
        try:
            return await self._run_held(job, name, run, held.lock)
        finally:
            held.users -= 1
            if not held.users:
                del self._held[key]

    def _overloaded(self) -> bool:
        """Whether the probe is overloaded: checks wait for a slot, and the last scheduled
        one to get its slot was over ``ADMIT_LAG_SHARE`` of its interval late (they get slots
        in turn, so a run due now would wait as long). Skipping runs then keeps the queue
        short, instead of queueing runs that would wait past their next run (and be thrown
        away then, their wait spent). Judged by the last check's own interval, whatever the
        job's: a run every 5 minutes (a prompt) is skipped as a run every 15 s is, not let
        through to take the core while the frequent checks are skipped."""
        return bool(self._waiting) and self._slot_lateness > ADMIT_LAG_SHARE

    async def _run_held(self, job: Job, name: str, run: _Run,
                        lock: asyncio.Lock) -> list[ProbeResult]:
        async with lock:
            waiting = True
            self._waiting += 1
            try:
                async with self._semaphore:
                    self._waiting -= 1
                    waiting = False
                    return await self._run_slotted(job, name, run)
            finally:
                if waiting:  # cancelled while waiting for a slot
                    self._waiting -= 1

    async def _run_slotted(self, job: Job, name: str, run: _Run) -> list[ProbeResult]:
        if run.scheduled_at is not None:
            lag = time.time() - run.scheduled_at
            self._slot_lateness = lag / job.interval_s if job.interval_s > 0 else 0.0
            if not run.lag_counted:  # the job's lag, counted once: its first slot's
                run.lag_counted = True
                self.state.observe_lag(lag)
            if lag > job.interval_s > 0:
                self.state.overload_skipped()
                return []  # overloaded: a run this late is not run, the next is due
        if self.stopping.is_set():
            return []  # stopped: the checks not yet begun do not start
        if run.turns is not None:
            run.turns.got_slot(name)
        self.state.add_in_flight(1)
        try:
            answer = await self._answer(job, name)
        finally:
            self.state.add_in_flight(-1)
        results = [self.publish(answer)]
        results.extend(self.publish(self._judged_from(job, check, answer))
                       for check, source in job.derived if source == name)
        return results

    async def run_one(self, job: Job, name: str) -> ProbeResult:
        """Run check ``name`` of ``job`` on its own (a reader makes its own request)."""
        return self.publish(await self._answer(job, name))

    async def _answer(self, job: Job, name: str) -> ProbeResult:
        result = await run_check(name, self.resolve(name), job.endpoint, self.client,
                                 self.context(job, name), job.attempts, self.watch)
        if result.details.get("overloaded") is True:
            self.state.overload_unobserved()
        return result

    def _judged_from(self, job: Job, name: str, answer: ProbeResult) -> ProbeResult:
        """Check ``name``'s result judged from ``answer`` (the unscrubbed result of the check
        it reads, in the same run): the same start, latency and attempts."""
        spec = self.resolve(name)
        if spec.derive is None:  # fold_readers pairs only checks that read another
            raise ValueError(f'check "{name}" is not judged from another check')
        try:
            observation = spec.derive(job.endpoint, self.context(job, name), answer)
        except Exception as exc:  # noqa: BLE001 - every failure becomes data
            observation = observation_from_exception(exc, job.attempts.timeout_s)
        if spec.policy is not None:
            observation = spec.policy(observation)
        return replace(answer, check=name, outcome=observation.outcome,
                       message=observation.message, http_status=observation.http_status,
                       details=observation.details, role=spec.role)

    def publish(self, result: ProbeResult) -> ProbeResult:
        """Scrub, store, judge and hand on ``result``; returns the scrubbed result."""
        result = self.redactor.result(result)
        for gate in self.gates:
            try:
                result = gate(result)
            except Exception:  # noqa: BLE001 - a gate's bug must not lose the result
                log.exception("result gate failed")
        if log.isEnabledFor(logging.DEBUG):  # (its arguments not read per result else)
            log.debug("%s %s: %s (%d attempt(s), %.3fs) %s", result.endpoint, result.check,
                      result.outcome, result.attempts, result.latency_s, result.message)
        row_id = None
        if self.recorder is not None:
            try:
                row_id = self.recorder.record(result)
            except Exception:  # noqa: BLE001 - storage trouble must not stop probing
                log.exception("could not queue result for storage")
        transitions = self.state.update(result, row_id)
        for observer in self.observers:
            try:
                observer(result, row_id)
            except Exception:  # noqa: BLE001
                log.exception("result observer failed")
        if self.judged:
            verdict = self.state.verdict(result.endpoint)
            for judged in self.judged:
                try:
                    judged(result, row_id, transitions, verdict)
                except Exception:  # noqa: BLE001
                    log.exception("verdict listener failed")
        return result
