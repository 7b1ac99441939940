"""Dispatch by URL prefix to the simulated services, and record what was asked.

- ``/proxy/{pod_id}-{port}/...``: a pod behind RunPod's HTTP proxy
- ``/v2/{endpoint_id}/...``: RunPod's serverless queue API
- ``/openai/{name}/...``: a generic OpenAI-compatible provider
- ``/api/v2/...``: RunPod's REST API (control plane): pods and serverless endpoints
- ``/``: a JSON summary of the fleet, for people trying the demo
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque

from probe.simulator import openai_provider, pods, rest_api, serverless
from probe.simulator.fleet import Fleet
from probe.simulator.messages import Reply, Request, SeenRequest, json_response
from probe.simulator.openai_provider import ProviderContext, openai_error
from probe.simulator.pods import PROXY_404, PodContext
from probe.simulator.serverless import EndpointContext

_PRIVATE_HEADERS = frozenset({"authorization", "proxy-authorization"})
_NOT_FOUND = json_response(404, {"detail": "Not Found"})
_SERVERLESS_UNAUTHORIZED = json_response(401, {"error": "Unauthorized."})
_NO_SUCH_ENDPOINT = json_response(404, {"error": "Endpoint not found."})


class Router:
    def __init__(self, fleet: Fleet, api_key: str | None, keep_requests: int) -> None:
        self._fleet = fleet
        self._api_key = api_key
        self._lock = threading.Lock()
        self._seen: deque[SeenRequest] = deque(maxlen=keep_requests)
        self._count = 0

    @property
    def requests_seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def request_count(self) -> int:
        return self._count

    def clear_requests(self) -> None:
        with self._lock:
            self._seen.clear()

    def _record(self, request: Request) -> None:
        headers = {k: v for k, v in request.headers.items() if k not in _PRIVATE_HEADERS}
        sent = request.headers.get("authorization")
        digest = hashlib.sha256(sent.encode()).hexdigest() if sent else None
        with self._lock:
            self._seen.append(SeenRequest(request.method, request.target, headers, digest))
            self._count += 1

    async def __call__(self, request: Request) -> Reply:
        self._record(request)
        head, _, rest = request.path.lstrip("/").partition("/")
        if head == "proxy":
            return await self._pod(request, rest)
        if head == "v2":
            return await self._serverless(request, rest)
        if head == "openai":
            return await self._provider(request, rest)
        if head == "api" and rest.startswith("v2/"):
            return rest_api.handle(request, rest[len("v2"):], self._fleet, self._api_key)
        if request.path == "/" and request.method == "GET":
            return json_response(200, self._summary())
        return _NOT_FOUND

    def answers_early(self, method: str, target: str) -> bool:
        """Whether the server answers this request without reading its body: a pod with the
        ``answers_before_body`` behaviour does so for its chat completions."""
        head, _, rest = target.lstrip("/").partition("/")
        if head != "proxy" or method != "POST":
            return False
        host, _, inner = rest.partition("/")
        entry = self._fleet.pod_entry(host.rpartition("-")[0])
        return entry is not None and entry.spec.behaviour in pods.EARLY_BEHAVIOURS \
            and inner.startswith("v1/chat/completions")

    async def _pod(self, request: Request, rest: str) -> Reply:
        host, _, inner = rest.partition("/")
        pod_id, _, port = host.rpartition("-")
        entry = self._fleet.pod_entry(pod_id)
        if entry is None or port != str(entry.spec.port):
            return PROXY_404  # destroyed pod, or a port not exposed over HTTP
        ctx = PodContext(request, "/" + inner, entry.spec, entry.metrics)
        return await pods.handle(ctx)

    async def _serverless(self, request: Request, rest: str) -> Reply:
        if not request.authorised(self._api_key):
            return _SERVERLESS_UNAUTHORIZED
        endpoint_id, _, inner = rest.partition("/")
        entry = self._fleet.endpoint_entry(endpoint_id)
        if entry is None:
            return _NO_SUCH_ENDPOINT
        return await serverless.handle(
            EndpointContext(request, "/" + inner, entry.spec, entry.state)
        )

    async def _provider(self, request: Request, rest: str) -> Reply:
        name, _, inner = rest.partition("/")
        spec = self._fleet.openai_spec(name)
        if spec is None:
            return openai_error(404, f"No OpenAI-compatible provider named {name!r}.")
        return await openai_provider.handle(
            ProviderContext(request, "/" + inner, spec, spec.api_key or self._api_key)
        )

    def _summary(self) -> dict[str, dict[str, str]]:
        return {
            "pods": {pod_id: spec.behaviour for pod_id, spec in self._fleet.pods.items()},
            "serverless": {ep: spec.behaviour for ep, spec in self._fleet.serverless.items()},
            "openai": {name: spec.behaviour for name, spec in self._fleet.openai.items()},
        }
