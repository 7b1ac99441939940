"""A simulated week, replayed in seconds: results written to a real database and judged by the
daemon's own wiring (``FleetState`` and ``LedgerKeeper``), with the pattern watch's clock
following the results' times.

The recording: a pod that answers 502 every night from 02:00 to 02:20 UTC, a serverless
endpoint whose cold starts (``delayTime``) double from day 5, a pod whose served model
changes on day 3, three pods in one data centre (``rack1``..``rack3``) that go down together
on three nights (at a different hour each night), a pod whose probe latency doubles from day
5, and a healthy control endpoint with a governed prompt; the swapper, the control and the
serverless endpoint also fail a single check now and then (random single failures).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers import parse_config, plan, role_of

from probe.config import Config
from probe.ledger.plugin import LedgerKeeper
from probe.ledger.settings import LearningSettings
from probe.outcome import Outcome, ProbeResult
from probe.state import FleetState
from probe.storage.database import open_database
from probe.store import INSERT, result_values

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # day 1 of the week
DAY = timedelta(days=1)
STEP = timedelta(minutes=5)
SWAP_AT = START + 2 * DAY + timedelta(hours=11, minutes=3)  # day 3
SLOWER_FROM = START + 4 * DAY  # day 5
SINGLE_FAILURES = 6  # per endpoint but the nightly pod, at random steps
# the nights the racks go down together (20 minutes; rack3 five minutes after the others)
RACK_DOWN = (START + DAY + timedelta(hours=1, minutes=10),
             START + 3 * DAY + timedelta(hours=3, minutes=40),
             START + 5 * DAY + timedelta(hours=4, minutes=15))
RACKS = ("rack1", "rack2", "rack3")


def config_text(db: Path, learning: Path, extra: str = "") -> str:
    return f"""
runpod: {{api_key_env: WEEK_KEY}}
storage: {{path: "{db}"}}
learning: {{path: "{learning}"{extra}}}
prompts:
  - {{name: arithmetic, prompt: "2+2", expect: {{regex: "4"}}, cross: "week", endpoints: [control]}}
endpoints:
  - {{name: nightly, kind: pod, pod_id: nightly0pod, port: 8000, checks: [models]}}
  - {{name: swapper, kind: pod, pod_id: swapper0pod, port: 8000, checks: [models]}}
  - {{name: control, kind: pod, pod_id: control0pod, port: 8000, checks: [models]}}
  - {{name: rack1, kind: pod, pod_id: rack10pod, checks: [models], data_center: EU-RO-1}}
  - {{name: rack2, kind: pod, pod_id: rack20pod, checks: [models], data_center: EU-RO-1}}
  - {{name: rack3, kind: pod, pod_id: rack30pod, checks: [models], data_center: EU-RO-1}}
  - {{name: slowing, kind: pod, pod_id: slowing0pod, checks: [models]}}
  - {{name: coldstart, kind: serverless, endpoint_id: coldstart0ep,
      roundtrip: {{interval: 30m, input: {{prompt: "2+2"}}}}}}
"""


def load(text: str) -> Config:
    return parse_config(text, {"WEEK_KEY": "made-up-week-key"})


def result(endpoint: str, check: str, at: datetime, outcome: Outcome = Outcome.OK,
           latency_s: float = 0.05, **details: Any) -> ProbeResult:
    kind = "serverless" if endpoint == "coldstart" else "pod"
    status = {Outcome.OK: 200, Outcome.HTTP_502: 502, Outcome.HTTP_404: 404}.get(outcome, 200)
    return ProbeResult(endpoint=endpoint, kind=kind, check=check, outcome=outcome,
                       started_at=at, latency_s=latency_s, attempts=1,
                       url=f"http://127.0.0.1:9/{endpoint}", message="",
                       http_status=status, details=details, role=role_of(check))


def week(days: int = 7, seed: int = 23) -> Iterator[ProbeResult]:
    """Every result of the week, in time order (one sweep every 5 minutes)."""
    rng = random.Random(seed)
    steps = days * 24 * 12
    single = {name: set(rng.sample(range(steps), SINGLE_FAILURES))
              for name in ("swapper", "control", "coldstart")}
    for step in range(steps):
        at = START + step * STEP
        night = at.hour == 2 and at.minute < 20
        yield result("nightly", "models", at, Outcome.HTTP_502 if night else Outcome.OK)
        model = "Qwen/Qwen2.5-7B-Instruct" if at < SWAP_AT else "meta-llama/Llama-3.1-8B"
        yield result("swapper", "models", at,
                      Outcome.HTTP_404 if step in single["swapper"] else Outcome.OK,
                      model=model, max_model_len=32768)
        yield result("control", "models", at,
                      Outcome.HTTP_502 if step in single["control"] else Outcome.OK,
                      model="Qwen/Qwen2.5-7B-Instruct", max_model_len=32768)
        prompt, completion = 12, rng.randint(1, 3)
        yield result("control", "prompt:arithmetic", at, ttft_s=round(rng.uniform(.2, .4), 4),
                      tokens_per_s=round(rng.uniform(40, 60), 2),
                      usage={"prompt_tokens": prompt, "completion_tokens": completion})
        for n, rack in enumerate(RACKS):
            late = timedelta(minutes=5 if n == 2 else 0)
            down = any(t + late <= at < t + late + timedelta(minutes=20) for t in RACK_DOWN)
            yield result(rack, "models", at, Outcome.HTTP_502 if down else Outcome.OK)
        slow = 2 if at >= SLOWER_FROM else 1
        yield result("slowing", "models", at, latency_s=round(rng.uniform(.18, .22) * slow, 4))
        yield result("coldstart", "queue", at,
                      Outcome.HTTP_502 if step in single["coldstart"] else Outcome.OK)
        if at.minute % 30 == 0:
            delay = rng.uniform(1.8, 2.4) * (2 if at >= SLOWER_FROM else 1)
            yield result("coldstart", "roundtrip", at, job_id=f"job-{step}",
                          job_status="COMPLETED", delay_s=round(delay, 3), execution_s=0.4)


class Replay:
    """The daemon's ledger wiring over ``db``, fed a recording at its own pace. ``again``:
    the recording is replayed from its beginning into a database that has seen it, judged
    from a clean slate as the first replay was (no verdicts or regressions resumed)."""

    def __init__(self, config: Config, again: bool = False) -> None:
        self.config = config
        self.now = START
        self.keeper = LedgerKeeper(config.storage.path, LearningSettings.of(config),
                                   LearningSettings.configured(config).patterns,
                                   clock=lambda: self.now, batch_interval_s=0.01,
                                   resume=not again)
        self.state = FleetState(role_of)
        jobs = plan(config)
        self.state.configure(config, jobs)
        if not again:
            self.state.restore(self.keeper.ledger.saved)
        self.keeper.sync(config, jobs, self.state.verdict, now=START)
        self.conn = open_database(config.storage.path)
        self.next_row = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM results")
                            .fetchone()[0]) + 1

    def feed(self, results: Iterator[ProbeResult]) -> None:
        rows = []
        for r in results:
            row, self.next_row = self.next_row, self.next_row + 1
            rows.append(result_values(row, r, lambda text: text))
            self.now = r.started_at
            transitions = self.state.update(r, row)
            self.keeper.ledger.judged(r, row, transitions, self.state.verdict(r.endpoint))
        self.conn.execute("BEGIN")
        self.conn.executemany(INSERT, rows)
        self.conn.execute("COMMIT")

    def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until the writer has nothing left (pattern entries come back to it once)."""
        deadline = time.monotonic() + timeout_s
        quiet, last = 0, -1
        while quiet < 5:
            assert time.monotonic() < deadline, "the ledger writer did not settle"
            time.sleep(0.05)
            head = entry_count(self.config.storage.path)
            busy = self.keeper.book.backlog_size() or not self.keeper.patterns.loaded \
                or self.keeper.book.judgements
            quiet = quiet + 1 if head == last and not busy else 0
            last = head

    def close(self) -> None:
        self.keeper.close()
        self.conn.close()


def replay_into(db: Path, learning: Path, results: Iterable[ProbeResult] = (),
                again: bool = False) -> None:
    """``results`` replayed through a ``Replay`` of the week's config over ``db`` and
    ``learning``, until its writer settles; closed after."""
    replay = Replay(load(config_text(db, learning)), again=again)
    try:
        replay.feed(iter(results))
        replay.settle()
    finally:
        replay.close()


def entry_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])
    finally:
        conn.close()
