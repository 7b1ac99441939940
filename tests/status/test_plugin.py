"""The status feature's start-up hook, on a fake host: ``/`` and ``/status.json`` beside
/metrics (redacted, with the other features' parts), the time in each state taken from the
verdict as results are published (maintenance is its own state), written when it closes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fake_host import FakeHost, start
from helpers import config_of, endpoint, plan, role_of

from probe.config.model import StorageSettings
from probe.outcome import Outcome, ProbeResult
from probe.status.plugin import FEATURE
from probe.status.uptime import UptimeBook
from probe.verdict import EndpointVerdict, Maintenance, Track


def seen(name: str, outcome: Outcome, at: datetime) -> ProbeResult:
    return ProbeResult(endpoint=name, kind="pod", check="models", outcome=outcome,
                       started_at=at, latency_s=0.01, attempts=1, url="http://x", role=role_of("models"))


def test_start_serves_the_pages_counts_uptime_and_writes_it_at_close(tmp_path: Path) -> None:
    db = tmp_path / "probe.db"
    config = replace(config_of(endpoint(name="qwen"), endpoint(name="held")),
                     storage=StorageSettings(db))
    now = datetime.now(UTC)

    async def main() -> set[asyncio.Task[object]]:
        host = FakeHost(config, plan(config))
        host.parts["notes"] = lambda: {"note": "a secret"}
        host.verdicts["held"] = EndpointVerdict(maintenance=Maintenance(
            "w", "w", "redeploy", "config", now.isoformat(), None))
        attachment = await start(FEATURE.startup[0], host)
        assert attachment is not None and attachment.on_plan is not None
        routes = attachment.routes
        assert sorted(routes) == ["/", "/status.json"]
        assert len(attachment.observers) == 1 and attachment.collectors == ()

        status, kind, body = routes["/status.json"]({})
        assert (status, kind) == (200, "application/json; charset=utf-8")
        assert json.loads(body)["notes"] == {"note": "a [redacted]"}
        status, kind, body = routes["/"]({})
        assert (status, kind) == (200, "text/html; charset=utf-8") and b"<html" in body

        observe = attachment.observers[0]
        host.verdicts["qwen"] = EndpointVerdict(availability=Track(state="up"))
        observe(seen("qwen", Outcome.OK, now - timedelta(seconds=60)), 1)
        host.verdicts["qwen"].availability.state = "down"
        observe(seen("qwen", Outcome.TIMEOUT, now - timedelta(seconds=30)), 2)
        observe(seen("held", Outcome.TIMEOUT, now - timedelta(seconds=60)), 3)
        assert attachment.close is not None
        attachment.close()
        await asyncio.sleep(0)
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(main()) == set(), "the flushing task ended with close"
    seconds = UptimeBook(db).seconds(["qwen", "held"], now + timedelta(hours=1))
    qwen, held = seconds["qwen"]["24h"], seconds["held"]["24h"]
    assert qwen["up"] == 30 and 30 <= qwen["down"] < 40  # credited up to the close
    assert held["maintenance"] >= 60 and held["down"] == 0  # planned, not downtime
