"""``GET {root}/health`` on a vLLM server: is the engine alive?

``/v1/models`` keeps answering 200 from the API process while the engine is dead, so it is
no liveness signal; ``/health`` asks the engine. vLLM answers 200 (empty body) when alive,
503 when the EngineCore died (500 before vLLM 0.11), and refuses connections while it loads
a model (``connect_error`` from the runner). Behind RunPod's proxy a stopped pod is a 404
and a server that is not listening a 502, both HTML pages: classified by status, like the
models check. A 500/503 HTML page comes from a proxy, not from vLLM (whose body is empty or
JSON), so it is not evidence about the engine.
"""

from __future__ import annotations

from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.http import describe_status, get, is_html, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome

ENGINE_DEAD_STATUSES = (503, 500)


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    url = f"{endpoint.root_url}/health"
    status, body, headers = await get(client, url, ctx.headers(endpoint), ctx.max_body_bytes)
    if 200 <= status < 300:
        return Observation(Outcome.OK, "engine alive", status)
    if status in ENGINE_DEAD_STATUSES and not is_html(body, headers):
        said = "empty body" if not body.strip() else describe_status(status, body)
        return Observation(Outcome.ENGINE_DEAD,
                           f"engine dead: /health answered {status} ({said})", status)
    return Observation(status_outcome(status) or Outcome.HTTP_4XX, describe_status(status, body),
                       status)

