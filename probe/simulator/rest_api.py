"""RunPod's REST API v2 (control plane) under ``/api/v2``: ``GET /pods`` and
``GET /serverless``, derived from the fleet.

Shapes follow RunPod's v2 OpenAPI: lists wrapped as ``{"pods": [...]}`` /
``{"endpoints": [...]}``, errors as RFC 9457 problem JSON, 403 for a key without permission,
429 with ``Retry-After``. ``Fleet.set_api_mode`` switches the whole control plane to
``restricted`` (403 on every list), ``rate_limited`` (429) or ``api_error`` (500).
"""

from __future__ import annotations

from typing import Any

from probe.simulator.fleet import Fleet
from probe.simulator.messages import JSON_TYPE, Reply, Request, Response, dumps
from probe.simulator.specs import PodSpec, ServerlessSpec

PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_S = 2
_NOT_RUNNING = {"stopped": "EXITED"}  # every other behaviour: the container runs
_CREATED = "2026-06-01T12:00:00Z"


def problem(status: int, title: str, detail: str,
            headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = dumps({"title": title, "status": status, "detail": detail})
    return Response(status, (("content-type", PROBLEM_TYPE), *headers), body)


def handle(request: Request, path: str, fleet: Fleet, api_key: str | None) -> Reply:
    if request.method != "GET":
        return problem(405, "Method Not Allowed", f"{request.method} is not supported here")
    if not request.authorised(api_key):
        return problem(401, "Unauthorized", "missing or invalid API key")
    mode = fleet.api_mode
    if mode == "rate_limited":
        return problem(429, "Too Many Requests", "rate limit exceeded",
                       (("retry-after", str(RETRY_AFTER_S)),))
    if mode == "api_error":
        return problem(500, "Internal Server Error", "simulated control-plane failure")
    route = path.strip("/")
    if route not in ("pods", "serverless"):
        return problem(404, "Not Found", f"no route /{route}")
    if mode == "restricted":
        return problem(403, "Forbidden", f"API key does not have permission to read {route}")
    host = request.headers.get("host", "127.0.0.1")
    if route == "pods":
        items = [pod_object(i, s) for i, s in sorted(fleet.pods.items())]
        return _ok({"pods": items})
    return _ok({"endpoints": [endpoint_object(i, s, host)
                              for i, s in sorted(fleet.serverless.items())]})


def _ok(value: Any) -> Response:
    return Response(200, (("content-type", JSON_TYPE), ("ratelimit-policy", "100;w=10")),
                    dumps(value))


def pod_object(pod_id: str, spec: PodSpec) -> dict[str, Any]:
    status = _NOT_RUNNING.get(spec.behaviour, "RUNNING")
    running = status == "RUNNING"
    return {
        "id": pod_id, "name": spec.name or pod_id, "status": status,
        "actions": ["stop", "restart", "terminate"] if running else ["start", "terminate"],
        "image": "vllm/vllm-openai:v0.32.0", "ports": [f"{spec.port}/http", "22/tcp"],
        "gpu": {"id": spec.gpu_type, "count": 1}, "dataCenterId": spec.data_center,
        "cost": 0.34 if running else 0.0,
        "runtime": {"uptime": 3600, "ports": [{"private": 22, "public": 34446, "type": "tcp",
                                               "ip": "127.0.0.1"}]} if running else None,
        "createdAt": _CREATED,
    }


def endpoint_object(endpoint_id: str, spec: ServerlessSpec, host: str) -> dict[str, Any]:
    base = f"http://{host}/v2/{endpoint_id}"
    return {
        "id": endpoint_id, "name": spec.name or endpoint_id, "type": spec.type,
        "requestUrls": {"run": f"{base}/run", "runSync": f"{base}/runsync",
                        "health": f"{base}/health"},
        "gpu": {"pools": ["ADA_24"], "count": 1, "allowedCudaVersions": [],
                "minCudaVersion": None},
        "workers": {"min": 0, "max": 3, "idleTimeout": 5},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}, "timeout": 600000,
        "flashboot": "FLASHBOOT", "dataCenterIds": list(spec.data_centers),
        "createdAt": _CREATED,
    }
