"""Per-endpoint config keys of serverless endpoints, read through the loader's extension
point: the queue rules' thresholds and the (paid, opt-in) round-trip job.

Each key lands in ``Endpoint.extra`` as parsed here; ``queue_settings``/``roundtrip_settings``
give the checks typed values with the defaults applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.config.fields import Fields, Problems
from probe.config.model import Config, Endpoint
from probe.durations import format_duration

DEFAULT_INITIALIZING_BUDGET_S = 7 * 60.0  # RunPod marks a worker unhealthy after 7 minutes
DEFAULT_STALL_CHECKS = 3
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_FAILURE_WINDOW_S = 10 * 60.0
DEFAULT_ROUNDTRIP_INTERVAL_S = 10 * 60.0
DEFAULT_WAIT_S = 30.0
DEFAULT_DEADLINE_S = 60.0
RUNSYNC_WAIT_RANGE_S = (1.0, 300.0)  # RunPod's ?wait= accepts 1000..300000 ms


@dataclass(frozen=True, slots=True)
class QueueSettings:
    initializing_budget_s: float = DEFAULT_INITIALIZING_BUDGET_S
    stall_checks: int = DEFAULT_STALL_CHECKS
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    failure_window_s: float = DEFAULT_FAILURE_WINDOW_S


@dataclass(frozen=True, slots=True)
class RoundTripSettings:
    interval_s: float
    wait_s: float  # how long /runsync holds the request before answering IN_QUEUE
    deadline_s: float  # from submit to giving up (then the job is cancelled)
    input: dict[str, Any] | None = None  # the job's input, sent as {"input": ...}
    openai: bool = False  # a chat completion through the worker's OpenAI route instead


def queue_settings(endpoint: Endpoint) -> QueueSettings:
    extra = endpoint.extra
    defaults = QueueSettings()
    return QueueSettings(
        initializing_budget_s=extra.get("initializing_budget") or defaults.initializing_budget_s,
        stall_checks=extra.get("stall_checks") or defaults.stall_checks,
        failure_threshold=extra.get("failure_threshold") or defaults.failure_threshold,
        failure_window_s=extra.get("failure_window") or defaults.failure_window_s,
    )


def roundtrip_settings(endpoint: Endpoint) -> RoundTripSettings | None:
    value = endpoint.extra.get("roundtrip")
    return value if isinstance(value, RoundTripSettings) else None


def _serverless_only(f: Fields, key: str) -> bool:
    """True when the key is present and may be used by this endpoint's kind."""
    if key not in f.raw:
        return False
    kind = f.raw.get("kind")
    if kind != "serverless":
        if isinstance(kind, str):  # an unknown or missing kind is reported by the loader
            f.fail(key, f'not used by kind "{kind}"')
        return False
    return True


def parse_initializing_budget(f: Fields) -> float | None:
    return f.duration("initializing_budget") if _serverless_only(f, "initializing_budget") \
        else None


def parse_stall_checks(f: Fields) -> int | None:
    return f.integer("stall_checks", minimum=2) if _serverless_only(f, "stall_checks") else None


def parse_failure_threshold(f: Fields) -> int | None:
    return f.integer("failure_threshold", minimum=1) \
        if _serverless_only(f, "failure_threshold") else None


def parse_failure_window(f: Fields) -> float | None:
    return f.duration("failure_window") if _serverless_only(f, "failure_window") else None


def parse_roundtrip(f: Fields) -> RoundTripSettings | None:
    if not _serverless_only(f, "roundtrip"):
        return None
    rt = Fields(f.raw["roundtrip"], f"{f.path}.roundtrip", f.problems,
                ("interval", "input", "openai", "wait", "deadline"))
    interval = rt.duration("interval", DEFAULT_ROUNDTRIP_INTERVAL_S)
    wait = rt.duration("wait", DEFAULT_WAIT_S)
    low, high = RUNSYNC_WAIT_RANGE_S
    if wait is not None and not low <= wait <= high:
        rt.fail("wait", f"must be between {format_duration(low)} and {format_duration(high)} "
                        f"(RunPod's /runsync range), got {format_duration(wait)}")
        wait = None
    deadline = rt.duration("deadline", max(DEFAULT_DEADLINE_S, wait or 0.0))
    openai = rt.boolean("openai", False)
    job_input = rt.raw.get("input")
    if job_input is not None and not isinstance(job_input, dict):
        rt.fail("input", "expected a mapping (RunPod requires the job input to be an object)")
        return None
    if (job_input is None) == (not openai):
        f.fail("roundtrip", 'needs exactly one of "input" (the job input) or "openai: true"')
        return None
    if wait is not None and deadline is not None and deadline < wait:
        rt.fail("deadline", f"must not be shorter than wait ({format_duration(wait)}), "
                            f"got {format_duration(deadline)}")
        return None
    if interval is not None and deadline is not None and deadline > interval:
        rt.fail("deadline", f"must not be longer than the interval "
                            f"({format_duration(interval)}), got {format_duration(deadline)}")
        return None
    if interval is None or wait is None or deadline is None:
        return None
    return RoundTripSettings(interval, wait, deadline, job_input, openai)


def validate_openai_model(config: Config, problems: Problems) -> None:
    """The OpenAI round trip must name the model, which may come from defaults or env."""
    for index, endpoint in enumerate(config.endpoints):
        rt = roundtrip_settings(endpoint)
        if rt is not None and rt.openai and endpoint.model is None:
            problems.add(f"endpoints[{index}].roundtrip.openai",
                         'needs the endpoint\'s "model" (the chat request must name it)')


def validate_checks(config: Config, problems: Problems) -> None:
    """The serverless checks only make sense where they are meant to run."""
    for index, endpoint in enumerate(config.endpoints):
        path = f"endpoints[{index}].checks"
        if "roundtrip" in endpoint.checks:
            problems.add(path, '"roundtrip" runs a paid job on its own schedule: configure it '
                               'with the endpoint\'s "roundtrip" key, not in checks')
        if "queue" in endpoint.checks and endpoint.kind != "serverless":
            problems.add(path, f'"queue" reads a serverless endpoint\'s /health; not for kind '
                               f'"{endpoint.kind}"')


ENDPOINT_KEYS = {
    "initializing_budget": parse_initializing_budget,
    "stall_checks": parse_stall_checks,
    "failure_threshold": parse_failure_threshold,
    "failure_window": parse_failure_window,
    "roundtrip": parse_roundtrip,
}
