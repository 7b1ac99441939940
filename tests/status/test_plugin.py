"""The status feature's start-up hook, on a fake host: ``/`` and ``/status.json`` beside
/metrics (redacted, with the other features' parts), uptime counted from every published
result except during maintenance, and written when it closes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from fake_host import FakeHost, start
from helpers import config_of, endpoint, plan, role_of

from probe.config.model import StorageSettings
from probe.outcome import Outcome, ProbeResult
from probe.status.plugin import FEATURE
from probe.status.uptime import UptimeBook
from probe.verdict import EndpointVerdict, Maintenance


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
        assert attachment is not None and attachment.on_plan is None
        routes = attachment.routes
        assert sorted(routes) == ["/", "/status.json"]
        assert len(attachment.observers) == 1 and attachment.collectors == ()

        status, kind, body = routes["/status.json"]({})
        assert (status, kind) == (200, "application/json; charset=utf-8")
        assert json.loads(body)["notes"] == {"note": "a [redacted]"}
        status, kind, body = routes["/"]({})
        assert (status, kind) == (200, "text/html; charset=utf-8") and b"<html" in body

        observe = attachment.observers[0]
        observe(seen("qwen", Outcome.OK, now), 1)
        observe(seen("qwen", Outcome.TIMEOUT, now), 2)
        observe(seen("held", Outcome.TIMEOUT, now), 3)  # in maintenance: not downtime
        assert attachment.close is not None
        attachment.close()
        await asyncio.sleep(0)
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(main()) == set(), "the flushing task ended with close"
    uptime = UptimeBook(db).uptime(["qwen", "held"], now)
    assert uptime["qwen"]["24h"] == 0.5 and uptime["held"]["24h"] is None
