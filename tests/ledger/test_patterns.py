"""The incident pattern detector on its own: said once when it starts to hold, once when it
stops (the slow clock), nothing in between, nothing for what it already counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.ledger.patterns import IncidentPatterns
from probe.ledger.settings import PatternSettings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def incidents(*hours: float, start: int = 1, prev: str = GENESIS) -> list[LedgerEntry]:
    """A down and a recovered entry of pod "p" (404) at each of ``hours`` after T0."""
    out: list[LedgerEntry] = []
    n = start
    for h in hours:
        for event in ("down", "recovered"):
            at = (T0 + timedelta(hours=h, minutes=5 if event == "recovered" else 0))
            d = LedgerDraft(ts=at.isoformat(), severity="critical", endpoint="p", event=event,
                            pattern=f"RunPod pod p (p1) {event} (404)",
                            evidence=Evidence("models", "http_404", n, n, "http://x",
                                              at.isoformat(timespec="seconds")))
            out.append(seal(d, n, out[-1].hash if out else prev))
            n += 1
    return out


def sealed_after(entries: list[LedgerEntry], drafts: list[LedgerDraft]) -> list[LedgerEntry]:
    out = list(entries)
    for d in drafts:
        out.append(seal(d, out[-1].id + 1, out[-1].hash))
    return out


def test_recurring_is_said_once_then_ends_once_after_a_quiet_week() -> None:
    detector = IncidentPatterns(PatternSettings())
    said = detector.feed(incidents(0, 5, 30))  # three incidents, three different hours
    assert [(d.event, d.endpoint, d.evidence.outcome) for d in said] == [
        ("recurring", "p", "http_404")]
    assert detector.feed(incidents(31, 50, start=7)) == [], "it holds: nothing in between"
    assert detector.tick(T0 + timedelta(days=3)) == []
    ended = detector.tick(T0 + timedelta(hours=50, days=7, minutes=1))
    assert [(d.event, d.severity) for d in ended] == [("recurring_ended", "info")]
    assert "no longer down (404) recurring: no incident in 7d since ledger #9" in ended[0].pattern
    assert detector.tick(T0 + timedelta(days=30)) == []


def test_a_restart_reading_the_ledger_says_nothing_it_said_before() -> None:
    first = incidents(0, 5, 30)
    said = IncidentPatterns(PatternSettings()).feed(first)
    ledger = sealed_after(first, said)
    assert IncidentPatterns(PatternSettings()).load(ledger) == []
    assert IncidentPatterns(PatternSettings()).load(first) != [], "unsaid: said at start"


def test_two_incidents_or_thresholds_not_met_say_nothing() -> None:
    assert IncidentPatterns(PatternSettings()).feed(incidents(0, 5)) == []
    spaced = incidents(0, 24 * 4, 24 * 8 + 1)  # three, but never three within 7 days
    assert IncidentPatterns(PatternSettings()).feed(spaced) == []
    stricter = PatternSettings(recurring_incidents=4)
    assert IncidentPatterns(stricter).feed(incidents(0, 5, 30)) == []
