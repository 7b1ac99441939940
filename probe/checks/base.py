"""What every check receives besides its endpoint and HTTP client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from probe.config.model import Endpoint
from probe.http import USER_AGENT
from probe.outcome import Verdict
from probe.secrets import bearer_headers


@dataclass(slots=True)
class CheckContext:
    """Per (endpoint, check) context. ``memory`` survives between runs of the check
    (previous served model, counters for deltas, consecutive-condition streaks);
    ``shared`` is one dict for all checks of the same endpoint (tokens spent this hour)."""

    max_body_bytes: int = 4 * 1024 * 1024
    memory: dict[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {"User-Agent": USER_AGENT, "Accept": "application/json",
                **bearer_headers(endpoint.api_key_env, self.env)}


CheckFn = Callable[[Endpoint, httpx.AsyncClient, CheckContext], Awaitable[Verdict]]
