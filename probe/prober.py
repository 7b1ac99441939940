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
    """One run of a job: when it was scheduled, and whether its lag is counted yet."""

    __slots__ = ("scheduled_at", "lag_counted")

    def __init__(self, scheduled_at: float | None) -> None:
        self.scheduled_at = scheduled_at
        self.lag_counted = False


class _Held:
    """The lock of one (endpoint, check) and how many hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Turn:
    """The checks after one in a job's turns, handed on to a task of their own when that
    one has not finished within the stagger (``Prober._in_turns``)."""

    __slots__ = ("prober", "job", "asked", "first", "run", "batches", "stagger_s", "rest")

    def __init__(self, prober: Prober, job: Job, asked: tuple[str, ...], first: int,
                 run: _Run, batches: list[list[ProbeResult]], stagger_s: float) -> None:
        self.prober, self.job, self.asked, self.first = prober, job, asked, first
        self.run, self.batches, self.stagger_s = run, batches, stagger_s
        self.rest: asyncio.Task[None] | None = None

    def hand_on(self) -> None:
        self.rest = asyncio.ensure_future(self.prober._in_turns(
            self.job, self.asked, self.first, self.run, self.batches, self.stagger_s))


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
        # checks waiting for a slot, and how late the last scheduled one got its slot (in
        # its intervals): the probe's overload (``_overloaded``)
        self._waiting = 0
        self._slot_lateness = 0.0
        # (endpoint, check) -> held while that check runs (never twice at once); there only
        # while someone holds or waits for it: a lock per check of a large fleet kept ~1 kB
        # per pod
        self._held: dict[tuple[str, str], _Held] = {}
        self._contexts: dict[tuple[str, str], CheckContext] = {}
        self._shared: defaultdict[str, dict[str, Any]] = defaultdict(dict)

    def context(self, job: Job, check: str) -> CheckContext:
        key = (job.endpoint.name, check)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = CheckContext(
                self.max_body_bytes, env=self.env, shared=self._shared[job.endpoint.name],
                stopping=self.stopping, durable=self.state.durable(*key))
        ctx.params = job.params
        return ctx

    async def run_job(self, job: Job, scheduled_at: float | None = None) -> list[ProbeResult]:
        """Run the job's checks in turns, each in a slot of the global bound: the next check
        starts when the one before it has finished, so a healthy pod's checks reuse one
        kept-alive connection (side by side, the default pod held three: 30,000 open files
        at 10,000 pods); or, when it has not finished within the job's stagger
        (``Job.stagger_s``), at once beside it: a check that cannot pass (a timeout) never
        holds back the endpoint's other checks past the stagger, so each is judged every
        interval. One check of one endpoint never runs twice at once. Once stopping, a
        check not yet begun does not start. A check the job judges from another's answer
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
        batches: list[list[ProbeResult]] = [[] for _ in asked]
        await self._in_turns(job, asked, 0, run, batches, job.stagger_s)
        results = [result for batch in batches for result in batch]
        if job.derived:
            order = {check: i for i, check in enumerate(job.checks)}
            results.sort(key=lambda result: order[result.check])
        return results

    async def _in_turns(self, job: Job, asked: tuple[str, ...], first: int, run: _Run,
                        batches: list[list[ProbeResult]], stagger_s: float) -> None:
        """Run ``asked[first:]`` one after another, each check's results into its batch. A
        check's turn arms a timer: when it fires before the check is done, the checks after
        it go on in a task of their own (``_Turn.hand_on``) and this one only finishes its
        check and waits for them. In the common case (every check answers within the
        stagger) there is no task: awaits in sequence cost less than a task per check
        (bench/run_path.py, a default pod's run over instant checks: 113 us of CPU through
        gather, 87 us in turns)."""
        loop = asyncio.get_running_loop()
        last = len(asked) - 1
        for i in range(first, last + 1):
            if i == last:
                batches[i] = await self._run_in_slot(job, asked[i], run)
                return
            turn = _Turn(self, job, asked, i + 1, run, batches, stagger_s)
            timer = loop.call_later(stagger_s, turn.hand_on)
            try:
                batches[i] = await self._run_in_slot(job, asked[i], run)
            except BaseException:
                if turn.rest is not None:
                    turn.rest.cancel()
                raise
            finally:
                timer.cancel()
            if turn.rest is not None:  # the rest went on meanwhile: wait for them
                await turn.rest
                return

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
