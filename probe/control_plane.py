"""Checks that ask a control plane (RunPod's API) about an endpoint: when the control plane
cannot be asked, the endpoint's state is unknown, never down and never up.

The runner applies ``as_unknown`` to the final verdict of such checks, after retries, so a
timeout, a refused connection, a 5xx or a 429 from the API becomes ``unknown`` with the
reason kept in the details. 401/403 are left alone: a key without permission is a finding.
This module also reads ``Retry-After`` and keeps the back-off a 429 asks for.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from probe.outcome import Observation, Outcome

# What "the control plane did not answer" looks like once attempts has mapped it.
UNANSWERED: frozenset[Outcome] = frozenset(
    {Outcome.TIMEOUT, Outcome.CONNECT_ERROR, Outcome.TLS_ERROR, Outcome.HTTP_502,
     Outcome.HTTP_5XX, Outcome.RATE_LIMITED}
)
DEFAULT_RETRY_AFTER_S = 60.0  # a 429 without a usable Retry-After still earns a pause
MAX_RETRY_AFTER_S = 3600.0  # a silly header must not silence a check for days
_BACKOFF_KEY = "control_plane_retry_at"


def as_unknown(verdict: Observation) -> Observation:
    """Turn "RunPod's API did not answer" into ``unknown``, keeping why and the status."""
    if verdict.outcome not in UNANSWERED:
        return verdict
    details = {**verdict.details, "reason": str(verdict.outcome)}
    if verdict.http_status is not None:
        details["http_status"] = verdict.http_status
    message = f"RunPod's API did not answer ({verdict.outcome}: {verdict.message}); " \
              "the endpoint's state is unknown"
    return Observation(Outcome.UNKNOWN, message, verdict.http_status, details)


def retry_after_s(header: str | None, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if header is None or not header.strip():
        return DEFAULT_RETRY_AFTER_S
    text = header.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return min(max(when.timestamp() - current, 0.0), MAX_RETRY_AFTER_S)


def back_off(memory: MutableMapping[str, Any], seconds: float) -> float:
    """Remember not to ask again for ``seconds``; returns the wall-clock time to wait for."""
    retry_at = time.time() + seconds
    memory[_BACKOFF_KEY] = retry_at
    return retry_at


def backing_off(memory: MutableMapping[str, Any]) -> Observation | None:
    """The verdict for a run that must not ask yet (a 429's Retry-After), or None."""
    retry_at = memory.get(_BACKOFF_KEY)
    if retry_at is None:
        return None
    if time.time() >= retry_at:
        del memory[_BACKOFF_KEY]
        return None
    when = datetime.fromtimestamp(retry_at, UTC).isoformat(timespec="seconds")
    return Observation(Outcome.RATE_LIMITED,
                       f"not asked: RunPod's API rate-limited us and asked to wait until {when}",
                       None, {"retry_at": when, "skipped": True})


def rate_limited(memory: MutableMapping[str, Any], header: str | None, message: str) -> Observation:
    """A 429: record the back-off and return the (not yet unknown) verdict."""
    wait_s = retry_after_s(header)
    retry_at = back_off(memory, wait_s)
    when = datetime.fromtimestamp(retry_at, UTC).isoformat(timespec="seconds")
    return Observation(Outcome.RATE_LIMITED, f"{message}; not asking again before {when}", 429,
                       {"retry_after_s": wait_s, "retry_at": when,
                    "retry_after_header": header})
