"""Regressions against an endpoint's own baseline, fed result by result over a simulated
week: said once when they start to hold, never for noise around a steady baseline."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import role_of

from probe.ledger.baselines import Baselines
from probe.ledger.chain import LedgerDraft
from probe.ledger.settings import PatternSettings
from probe.outcome import Outcome, ProbeResult
from probe.storage.baselines import forget_hours_before, save_hours
from probe.storage.schema import BASELINE_HOURS

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY5 = START + timedelta(days=4)


def result(check: str, at: datetime, **details: Any) -> ProbeResult:
    return ProbeResult(endpoint="e", kind="serverless", check=check, outcome=Outcome.OK,
                       started_at=at, latency_s=0.1, attempts=1, url="http://x", message="",
                       http_status=200, details=details, role=role_of(check))


class Fed:
    """Baselines fed result by result; each finished hour kept in a real SQLite table and
    the judgements due read from it, as the ledger's writer does."""

    def __init__(self) -> None:
        self.baselines = Baselines(PatternSettings())
        self.conn = sqlite3.connect(":memory:")
        for statement in BASELINE_HOURS:
            self.conn.execute(statement)

    def __call__(self, r: ProbeResult, row: int, who: str) -> list[LedgerDraft]:
        self.baselines.observe(r, row, who)
        hours, forget, due = self.baselines.take()
        save_hours(self.conn, hours)
        if forget is not None:
            forget_hours_before(self.conn, forget)
        self.baselines.waiting.extend(due)
        out = self.baselines.judge(self.conn)
        return out


def run(check: str, sample: Any, every: timedelta = timedelta(minutes=30)) -> list[LedgerDraft]:
    fed, out = Fed(), []
    at, row = START, 1
    while at < START + timedelta(days=7):
        out += fed(result(check, at, **sample(at, row)), row, "Endpoint e")
        at, row = at + every, row + 1
    return out


def test_more_cold_starts_is_a_share_regression_and_their_delay_is_not() -> None:
    """From day 5 six round trips in ten start cold instead of one: the share rose; each cold
    start still takes 5 s (warm ones are queueing, not cold starts, so not in the delay)."""
    def sample(at: datetime, row: int) -> dict[str, Any]:
        cold = row % 10 < (6 if at >= DAY5 else 1)
        return {"job_id": f"job-{row}", "start": "cold" if cold else "warm",
                "delay_s": 5.0 if cold else 0.5}

    said = run("roundtrip", sample)
    assert [(d.event, d.evidence.outcome) for d in said] == [("regression", "cold_start_share")]
    assert "share of round trips that started cold rose: 31% over the last 24 h (48 round " \
        "trips) against 10% over the 6d before" in said[0].pattern
    assert said[0].evidence.observed_at is not None and said[0].evidence.observed_at >= "2026-03-06"


def test_noise_around_a_steady_baseline_says_nothing() -> None:
    rng = random.Random(7)
    said = run("prompt:arithmetic", lambda at, row: {"ttft_s": rng.uniform(.1, .5),
                                                     "tokens_per_s": rng.uniform(30, 70)},
               timedelta(minutes=5))
    assert said == []


def test_a_halved_decode_rate_is_a_regression() -> None:
    rng = random.Random(7)
    said = run("prompt:arithmetic", lambda at, row: {
        "ttft_s": rng.uniform(.2, .3),
        "tokens_per_s": rng.uniform(45, 55) / (2 if at >= DAY5 else 1)}, timedelta(minutes=5))
    assert [(d.event, d.evidence.outcome) for d in said] == [("regression", "tokens_per_s")]
    assert "decode rate (tokens/s) regressed on prompt:arithmetic" in said[0].pattern


def test_a_regression_that_passes_is_said_to_end_once() -> None:
    """Time to first token doubles for day 4 only: one row when it starts, one when it ends."""
    rng = random.Random(7)
    day4 = START + timedelta(days=3)

    def sample(at: datetime, row: int) -> dict[str, Any]:
        slow = day4 <= at < day4 + timedelta(days=1)
        return {"ttft_s": rng.uniform(.2, .3) * (2 if slow else 1)}

    said = run("prompt:arithmetic", sample, timedelta(minutes=5))
    assert [(d.event, d.evidence.outcome) for d in said] == [
        ("regression", "ttft_s"), ("regression_ended", "ttft_s")]
    assert said[0].severity == "warning" and said[1].severity == "info"
    assert "time to first token on prompt:arithmetic back to its baseline" in said[1].pattern


def latency_run(latency: Any) -> list[LedgerDraft]:
    """A pod's models check every 5 minutes for a week, ``latency(at, rng)`` seconds each."""
    fed, rng = Fed(), random.Random(5)
    out: list[LedgerDraft] = []
    at, row = START, 1
    while at < START + timedelta(days=7):
        r = ProbeResult(endpoint="p", kind="pod", check="models", outcome=Outcome.OK,
                        started_at=at, latency_s=latency(at, rng), attempts=1, url="http://x",
                        message="", http_status=200, details={}, role=role_of("models"))
        out += fed(r, row, "RunPod pod p")
        at, row = at + timedelta(minutes=5), row + 1
    return out


def test_probe_latency_regresses_against_its_own_baseline_only_when_it_matters() -> None:
    doubled = latency_run(lambda at, rng: rng.uniform(.25, .35) * (2 if at >= DAY5 else 1))
    assert [(d.event, d.evidence.check, d.evidence.outcome) for d in doubled] == [
        ("regression", "models", "latency_s")]
    assert "probe latency regressed on models" in doubled[0].pattern
    # a healthy fleet's noise (and its tail) says nothing in a week
    assert latency_run(lambda at, rng: rng.lognormvariate(-2.3, 0.4)) == []
    # 40 ms to 70 ms is 1.75x, but not a lesson: a latency must also rise by 100 ms
    assert latency_run(lambda at, rng: rng.uniform(.035, .045)
                       * (1.75 if at >= DAY5 else 1)) == []


def test_each_sample_goes_into_its_hour_and_a_finished_hour_is_handed_over_once() -> None:
    # a pass's latency, in its hour: one read late (before its series' hour began) counts
    # in the current one, the first of the next hour finishes the hour; a failure's latency
    # and a round trip's are not probe latency
    baselines = Baselines(PatternSettings())
    hour = START + timedelta(hours=5)
    for minutes, row in ((0, 1), (59.99, 2), (-10, 3), (60, 4), (61, 5)):
        baselines.observe(result("models", hour + timedelta(minutes=minutes)), row, "e")
    failed = result("models", hour + timedelta(minutes=62))
    baselines.observe(ProbeResult(**{**{f: getattr(failed, f) for f in failed.__slots__},
                                     "outcome": Outcome.TIMEOUT}), 6, "e")
    baselines.observe(result("roundtrip", hour, job_id="j", delay_s=2.0, start="cold"), 7,
                      "e")
    hours, forget, due = baselines.take()
    assert [(h.hour, h.seen, h.first_row, h.last_row) for h in hours] == \
        [(hour.isoformat(), 3, 1, 3)]
    assert forget is not None
    assert [(d.key, d.at) for d in due] == [
        (("e", "models", "latency_s"), hour),
        (("e", "models", "latency_s"), hour + timedelta(hours=1)),
        (("e", "roundtrip", "cold_start_s"), hour),
        (("e", "roundtrip", "cold_start_share"), hour)]
    current = baselines.current(("e", "models", "latency_s"))
    assert current is not None and current.seen == 2 and current.last_row == 5
    assert not baselines.pending() and baselines.take() == ([], None, [])
