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


def downs(*at: tuple[str, float], start: int = 1) -> list[LedgerEntry]:
    """A down entry (502) of each (pod, hours after T0), then its recovery 20 minutes on."""
    timeline = sorted([(T0 + timedelta(hours=h), pod, "down") for pod, h in at]
                      + [(T0 + timedelta(hours=h, minutes=20), pod, "recovered")
                         for pod, h in at])
    out: list[LedgerEntry] = []
    for n, (when, pod, event) in enumerate(timeline, start):
        d = LedgerDraft(ts=when.isoformat(), severity="critical", endpoint=pod, event=event,
                        pattern=f"RunPod pod {pod} ({pod}0) {event} (502)",
                        evidence=Evidence("models", "http_502", n, n, "http://x",
                                          when.isoformat(timespec="seconds")))
        out.append(seal(d, n, out[-1].hash if out else GENESIS))
    return out


def racks(settings: PatternSettings | None = None) -> IncidentPatterns:
    detector = IncidentPatterns(settings or PatternSettings())
    detector.groups.members = {"a": ("dc:EU-RO-1",), "b": ("dc:EU-RO-1",),
                               "c": ("dc:EU-RO-1", "gpu:NVIDIA A40"), "d": ("dc:US-TX-3",)}
    return detector


# three nights at different hours; b five minutes after a
NIGHTS = [(pod, h + (5 / 60 if pod == "b" else 0)) for h in (1, 27.5, 52.25)
          for pod in ("a", "b")]


def test_endpoints_of_one_data_centre_down_together_three_times_are_one_group_pattern() -> None:
    detector = racks()
    said = detector.feed(downs(*NIGHTS))
    assert [(d.event, d.endpoint) for d in said] == [("failed_together", "dc:EU-RO-1")]
    assert said[0].pattern.startswith("Endpoints on data centre EU-RO-1 went down together 3 "
                                      "times within 7d: a, b (")
    assert "ledger #1, #2; " in said[0].pattern, "each start's incidents, by ledger id"
    ledger = sealed_after(downs(*NIGHTS), said)
    assert racks().load(ledger) == [], "a restart says nothing it said before"
    assert detector.tick(T0 + timedelta(days=3)) == []
    ended = detector.tick(T0 + timedelta(hours=53, days=7))
    assert [(d.event, d.endpoint) for d in ended] == [("failed_together_ended", "dc:EU-RO-1")]


def test_pods_of_one_gpu_type_and_one_data_centre_are_one_group_pattern() -> None:
    """a and b share their GPU type and their data centre: the two groups name the same
    endpoints, so one entry names both groups (each in its structured members), a restart
    says neither again, and one entry says they stopped."""
    detector = racks()
    both = ("gpu:NVIDIA A40", "dc:EU-RO-1")
    detector.groups.members = {"a": both, "b": both}
    said = detector.feed(downs(*NIGHTS))
    assert [(d.event, d.endpoint, d.evidence.members) for d in said] == [
        ("failed_together", "gpu:NVIDIA A40+dc:EU-RO-1", both)]
    assert said[0].pattern.startswith("Endpoints on GPU type NVIDIA A40 and data centre "
                                      "EU-RO-1 went down together 3 times within 7d: a, b (")
    again = racks()
    again.groups.members = detector.groups.members
    assert again.load(sealed_after(downs(*NIGHTS), said)) == []
    ended = detector.tick(T0 + timedelta(hours=53, days=7))
    assert [(d.event, d.endpoint, d.evidence.members) for d in ended] == [
        ("failed_together_ended", "gpu:NVIDIA A40+dc:EU-RO-1", both)]
    assert ended[0].pattern.startswith("Endpoints on GPU type NVIDIA A40 and data centre "
                                       "EU-RO-1 no longer fail together")


def test_no_group_pattern_for_other_groups_far_apart_starts_or_too_few_starts() -> None:
    other = [(pod, h + (5 / 60 if pod == "d" else 0)) for h in (1, 27.5, 52.25)
             for pod in ("a", "d")]
    assert sorted((d.event, d.endpoint) for d in racks().feed(downs(*other))) == [
        ("recurring", "a"), ("recurring", "d")], "two data centres: each pod on its own"
    apart = [(pod, h + (0.5 if pod == "b" else 0)) for h in (1, 27.5, 52.25)
             for pod in ("a", "b")]  # 30 minutes apart: not together
    assert [d.event for d in racks().feed(downs(*apart))
            if d.event == "failed_together"] == []
    assert [d for d in racks(PatternSettings(group_starts=4)).feed(downs(*NIGHTS))
            if d.event == "failed_together"] == []


def test_incidents_that_are_a_group_s_are_not_the_endpoint_s_own_recurrence() -> None:
    """Each pod went down three times in the week, always with the other: the group is the
    lesson; without a group each pod recurs on its own."""
    assert [d.event for d in racks().feed(downs(*NIGHTS))] == ["failed_together"]
    alone = IncidentPatterns(PatternSettings())
    assert sorted((d.event, d.endpoint) for d in alone.feed(downs(*NIGHTS))) == [
        ("recurring", "a"), ("recurring", "b")]
