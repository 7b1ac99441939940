"""Builders for ledger tests: results at chosen wall-clock times, drafts, sealed chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import role_of

from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.outcome import Outcome, ProbeResult

T0 = datetime(2026, 2, 18, 9, 0, tzinfo=UTC)


def result(outcome: Outcome = Outcome.OK, at: float = 0.0, check: str = "models",
           endpoint: str = "qwen", message: str = "", **details: Any) -> ProbeResult:
    """A result observed ``at`` seconds after T0."""
    return ProbeResult(endpoint=endpoint, kind="pod", check=check, outcome=outcome,
                       started_at=T0 + timedelta(seconds=at), latency_s=0.01, attempts=1,
                       url="http://127.0.0.1:9/proxy/aq0t10sits4kz2-8000", message=message,
                       http_status=404 if outcome is Outcome.HTTP_404 else 200,
                       details=dict(details), role=role_of(check))


def draft(n: int = 1, endpoint: str = "qwen") -> LedgerDraft:
    return LedgerDraft(ts=f"2026-02-18T09:{n:02d}:00+00:00", severity="critical",
                       endpoint=endpoint, event="down",
                       pattern=f"RunPod pod {endpoint} (aq0t10sits4kz2) down (404) — case {n}",
                       evidence=Evidence("models", "http_404", n, n + 2, "http://x/proxy"))


def chain(count: int) -> list[LedgerEntry]:
    """``count`` entries, each an incident of an endpoint of its own (so each is a lesson)."""
    out: list[LedgerEntry] = []
    for n in range(1, count + 1):
        out.append(seal(draft(n, f"qwen-{n}"), n, out[-1].hash if out else GENESIS))
    return out


class Wired:
    """The fleet's verdicts and the ledger, wired as the daemon wires them: a result is judged
    by ``FleetState`` and its transitions are written by the ``Ledger``."""

    def __init__(self, book: Any, settings: Any = None, redact: Any = None,
                 standing: Any = None) -> None:
        from probe.app import PLUGINS
        from probe.ledger.observer import Ledger
        from probe.state import FleetState

        self.state = FleetState(role_of)
        self.settings = settings
        self.ledger = Ledger(book, redact or (lambda text: text),
                             PLUGINS.standing if standing is None else standing)
        self.restored = False

    def sync(self, config: Any, settings: Any = None, now: datetime | None = None) -> Any:
        from helpers import plan

        jobs = plan(config)
        self.state.configure(config, jobs)
        self.settings = settings or self.settings
        if self.settings is not None:
            self.state.hysteresis = self.settings
        if not self.restored:  # the daemon restores once, at start
            self.state.restore(self.ledger.saved)
            self.restored = True
        return self.ledger.sync_config(config, jobs, self.state.verdict, now=now)

    def observe(self, r: ProbeResult, row: int | None) -> Any:
        transitions = self.state.update(r, row)
        return self.ledger.judged(r, row, transitions, self.state.verdict(r.endpoint))

    @property
    def states(self) -> dict[str, Any]:
        return {name: self.state.verdict(name) for name in self.ledger.known}


def sync(wired: Wired, config: Any, *args: Any, **kwargs: Any) -> Any:
    return wired.sync(config, *args, **kwargs)
