"""What every check is and receives: ``async def check(endpoint, client, ctx) -> Observation``.

A check observes one endpoint once and returns a ``Observation`` (a failing endpoint is data);
``attempts`` times it, retries it, and maps exceptions to outcomes. A ``CheckSpec`` names a
check and says how ``attempts`` treats its final observation (``policy``): checks that ask
RunPod's control plane instead of the endpoint turn "could not ask" into ``unknown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from probe.config.model import Endpoint
from probe.http import USER_AGENT
from probe.net import ProbeClient
from probe.outcome import CheckRole, Observation, ProbeResult
from probe.secrets import bearer_headers

# The parameters of a context made without any: one shared, read-only empty mapping.
_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


class CheckContext:
    """Per (endpoint, check) context. ``memory`` survives between runs of the check
    (previous served model, counters for deltas, consecutive-condition streaks);
    ``shared`` is one dict for all checks of the same endpoint (tokens spent this hour);
    ``params`` are the parameters of the job the check runs in (the prompt it asks);
    ``durable`` is memory kept across restarts (JSON values only: streaks that take several
    readings to judge); ``stopping`` is set when the daemon stops, so a long check can
    wind down cleanly.

    The daemon keeps one per (endpoint, check): six per default pod. ``memory`` and
    ``durable`` are made on first use (most checks use neither: an empty dict is 64 bytes,
    and a durable one is also an entry in the endpoint's verdict, ~570 bytes a default pod
    for the two); ``durable_of(*key)`` makes the durable one (the state's, kept with the
    verdict: one callable shared by every context, and the key the prober holds already).
    A context made without ``params`` shares one empty mapping."""

    __slots__ = ("max_body_bytes", "_memory", "env", "shared", "params", "stopping",
                 "_durable", "_durable_of", "_key")

    def __init__(self, max_body_bytes: int = 4 * 1024 * 1024,
                 memory: dict[str, Any] | None = None, env: Mapping[str, str] | None = None,
                 shared: dict[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                 stopping: asyncio.Event | None = None,
                 durable: dict[str, Any] | None = None,
                 durable_of: Callable[[str, str], dict[str, Any]] | None = None,
                 key: tuple[str, str] = ("", "")) -> None:
        self.max_body_bytes = max_body_bytes
        self._memory = memory
        self.env = env
        self.shared: dict[str, Any] = {} if shared is None else shared
        self.params: Mapping[str, Any] = _NO_PARAMS if params is None else params
        self.stopping = stopping
        self._durable = durable
        self._durable_of = durable_of
        self._key = key

    @property
    def memory(self) -> dict[str, Any]:
        if self._memory is None:
            self._memory = {}
        return self._memory

    @property
    def durable(self) -> dict[str, Any]:
        if self._durable is None:
            self._durable = {} if self._durable_of is None else self._durable_of(*self._key)
        return self._durable

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json",
                **bearer_headers(endpoint.api_key_env, self.env)}


CheckFn = Callable[[Endpoint, ProbeClient, CheckContext], Awaitable[Observation]]
# ``CheckContext.shared`` key: wall-clock time of the last answer the endpoint's engine
# completed (the prompt checks write it; the vLLM checks read it as evidence of progress).
ANSWERED_AT = "engine_answered_at"
# ``CheckContext.shared`` key: (model id, wall-clock time) the models check last picked
# from the server's list (the prompts send it while fresh instead of asking again).
SERVED_MODEL = "served_model_seen"
SERVED_MODEL_FRESH_S = 120.0
Policy = Callable[[Observation], Observation]


@dataclass(frozen=True, slots=True)
class CheckCost:
    """What one run of a check costs, at most: HTTP requests, tokens it may spend, and
    serverless jobs it submits (each wakes a worker and is billed)."""

    requests: int = 1
    tokens: int = 0
    jobs: int = 0


# (endpoint, the job's parameters) -> the cost of one run
Costing = Callable[[Endpoint, Mapping[str, Any]], CheckCost]


def one_request(endpoint: Endpoint, params: Mapping[str, Any]) -> CheckCost:
    return CheckCost()


def worker_route(endpoint: Endpoint, params: Mapping[str, Any]) -> CheckCost:
    """One request to the OpenAI-compatible route: on a serverless endpoint that route
    runs as a job on a worker (it wakes one, and is billed)."""
    return CheckCost(jobs=1 if endpoint.kind == "serverless" else 0)


# (endpoint, the reader's context, the answer of the check it reads) -> its observation
Derive = Callable[[Endpoint, CheckContext, ProbeResult], Observation]

# check name -> its role (``Plugins.role_of``: what the check's spec names)
RoleOf = Callable[[str], CheckRole]


def availability_only(check: str) -> CheckRole:
    """Every check an availability check: the role map of a plan without governed answers."""
    return CheckRole.AVAILABILITY


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check by name. A ``family`` check answers every name ``<name>:<parameter>`` (e.g.
    ``prompt:arithmetic``); its parameter travels on the job. ``cost`` says what one run
    costs (``check-config`` adds it up per day); ``role`` what its results say about the
    endpoint (availability, the served model, or a governed answer)."""

    name: str
    run: CheckFn
    policy: Policy | None = None  # applied by attempts to the final observation, after retries
    family: bool = False
    cost: Costing = one_request
    role: CheckRole = CheckRole.AVAILABILITY  # what its results say (the verdict reads it)
    # The check whose answer this one can be judged from (``derive``) when both run in one
    # job: then it makes no request of its own (``probe.job.fold_readers``).
    reads: str | None = None
    derive: Derive | None = None

    def __post_init__(self) -> None:
        if (self.reads is None) != (self.derive is None):
            raise ValueError(f'check "{self.name}": reads and derive go together')

    def answers(self, check: str) -> bool:
        if self.family:
            family, sep, _ = check.partition(":")
            return bool(sep) and family == self.name
        return check == self.name
