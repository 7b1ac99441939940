"""Control-plane failures become unknown; Retry-After in both of its forms."""

from __future__ import annotations

import pytest
from freezegun import freeze_time

from probe import control_plane
from probe.outcome import Observation, Outcome

MAPPED = [
    (Outcome.TIMEOUT, Outcome.UNKNOWN), (Outcome.CONNECT_ERROR, Outcome.UNKNOWN),
    (Outcome.TLS_ERROR, Outcome.UNKNOWN), (Outcome.HTTP_5XX, Outcome.UNKNOWN),
    (Outcome.HTTP_502, Outcome.UNKNOWN), (Outcome.RATE_LIMITED, Outcome.UNKNOWN),
    (Outcome.UNAUTHORIZED, Outcome.UNAUTHORIZED), (Outcome.HTTP_404, Outcome.HTTP_404),
    (Outcome.BAD_RESPONSE, Outcome.BAD_RESPONSE), (Outcome.OK, Outcome.OK),
    (Outcome.CRASH_LOOPING, Outcome.CRASH_LOOPING), (Outcome.JOB_FAILED, Outcome.JOB_FAILED),
]


@pytest.mark.parametrize(("raw", "final"), MAPPED, ids=[str(m[0]) for m in MAPPED])
def test_as_unknown(raw: Outcome, final: Outcome) -> None:
    verdict = control_plane.as_unknown(Observation(raw, "why", 503, {"k": 1}))
    assert verdict.outcome is final
    if final is Outcome.UNKNOWN:
        assert verdict.details == {"k": 1, "reason": str(raw), "http_status": 503}
        assert "why" in verdict.message


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 12 ", 12.0), ("999999", control_plane.MAX_RETRY_AFTER_S),
     ("Fri, 01 May 2026 12:00:30 GMT", 30.0), ("Fri, 01 May 2026 11:00:00 GMT", 0.0),
     (None, control_plane.DEFAULT_RETRY_AFTER_S), ("soon", control_plane.DEFAULT_RETRY_AFTER_S),
     ("-3", control_plane.DEFAULT_RETRY_AFTER_S)],
    ids=["seconds", "spaces", "capped", "http-date", "date-in-past", "missing", "garbage",
         "negative"],
)
def test_retry_after(header: str | None, seconds: float) -> None:
    with freeze_time("2026-05-01 12:00:00"):
        assert control_plane.retry_after_s(header) == seconds


def test_back_off_lasts_until_retry_at() -> None:
    memory: dict[str, object] = {}
    with freeze_time("2026-05-01 12:00:00") as clock:
        verdict = control_plane.rate_limited(memory, "10", "HTTP 429")
        assert verdict.details["retry_at"] == "2026-05-01T12:00:10+00:00"
        clock.tick(9)
        assert control_plane.backing_off(memory) is not None
        clock.tick(1)
        assert control_plane.backing_off(memory) is None
        assert memory == {}
