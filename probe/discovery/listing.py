"""Ask RunPod's REST API (v2) for the account's pods and serverless endpoints.

``GET {api}/pods`` answers ``{"pods": [...]}`` and ``GET {api}/serverless`` answers
``{"endpoints": [...]}``; errors are RFC 9457 problem JSON (``title``/``detail``), a key
without permission gets 403 and a 429 carries ``Retry-After``. One listing is one check
(both routes, under one deadline), so the runner times, retries and maps exceptions as for
any other check; what was listed is left in the check's memory for the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from probe import control_plane
from probe.check import CheckContext
from probe.config.model import Endpoint
from probe.http import BadBody, error_message, get, is_html, parse_json_object
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome

LISTED_KEY = "listed"  # ctx.memory: kind -> tuple of listed items, for kinds listed this run
# kind -> (route under the API base, wrapper key, what the route lists, in words)
ROUTES = {"pod": ("pods", "pods", "pods"),
          "serverless": ("serverless", "endpoints", "serverless endpoints")}
PERMISSION = {"pod": "pod management", "serverless": "serverless endpoint"}


@dataclass(frozen=True, slots=True)
class Listed:
    """One pod or serverless endpoint as RunPod's API lists it."""

    kind: str  # "pod" or "serverless"
    id: str
    name: str
    status: str | None = None  # pods: PROVISIONING|STARTING|RUNNING|EXITED|ERROR|TERMINATED
    type: str | None = None  # serverless: QUEUE|LOAD_BALANCER
    ports: tuple[str, ...] = ()  # pods: "8000/http", "22/tcp"
    gpu_type: str | None = None  # pods: gpu.id, e.g. "NVIDIA GeForce RTX 4090"
    # pods: dataCenterId, e.g. "EU-RO-1"; serverless: the one entry of dataCenterIds (an
    # endpoint allowed in several data centres, or in all, is in none of their groups)
    data_center: str | None = None


def parse_listing(kind: str, document: dict[str, Any]) -> tuple[Listed, ...]:
    """The items of a ``{"pods": [...]}`` / ``{"endpoints": [...]}`` answer; BadBody if the
    shape is not RunPod's (an item without a string id cannot be probed or matched)."""
    _, wrapper, _ = ROUTES[kind]
    items = document.get(wrapper)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadBody(f'expected {{"{wrapper}": [objects]}}')
    out = []
    for item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise BadBody(f"a listed {kind} has no string id")
        name = item.get("name")
        ports = item.get("ports")
        gpu = item.get("gpu")
        out.append(Listed(
            kind=kind, id=item_id, name=name if isinstance(name, str) and name else item_id,
            status=_text(item.get("status")), type=_text(item.get("type")),
            ports=tuple(p for p in ports if isinstance(p, str)) if isinstance(ports, list)
            else (),
            gpu_type=_id(gpu.get("id")) if isinstance(gpu, dict) and kind == "pod" else None,
            data_center=_id(item.get("dataCenterId")) if kind == "pod" else
            _only(item.get("dataCenterIds"))))
    return tuple(sorted(out, key=lambda listed: listed.id))


def _text(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _only(values: Any) -> str | None:
    """The data centre of a serverless endpoint whose ``dataCenterIds`` lists exactly one:
    its workers all run there. With more (or none: RunPod's default, any), which one a
    failing worker ran in is not known, so it belongs to no data centre's group."""
    if isinstance(values, list) and len(values) == 1:
        return _id(values[0])
    return None


def _id(value: Any) -> str | None:
    """An id as RunPod spells it (GPU types and data centres), when it is printable text."""
    return value if isinstance(value, str) and value and value.isprintable() else None


def make_check(kinds: tuple[str, ...]) -> Any:
    """The listing check for ``kinds``; ``endpoint.root_url`` is the API base."""

    async def check(endpoint: Endpoint, client: ProbeClient,
                    ctx: CheckContext) -> Observation:
        ctx.memory[LISTED_KEY] = {}
        waiting = control_plane.backing_off(ctx.memory)
        if waiting is not None:
            return waiting
        refused: list[tuple[str, int, str]] = []
        for kind in kinds:
            route, _, words = ROUTES[kind]
            url = f"{endpoint.root_url}/{route}"
            status, body, headers = await get(client, url, ctx.headers(endpoint),
                                              ctx.max_body_bytes)
            if status in (401, 403):
                refused.append((kind, status, problem_text(body)))
                continue
            failure = f"GET /{route}: HTTP {status}: {problem_text(body)}"
            if status == 429:
                return control_plane.rate_limited(ctx.memory, headers.get("retry-after"),
                                                  failure)
            if not 200 <= status < 300:
                return Observation(_failure(status), failure, status)
            try:
                ctx.memory[LISTED_KEY][kind] = parse_listing(kind, parse_json_object(body))
            except BadBody as exc:
                return Observation(Outcome.BAD_RESPONSE, f"GET /{route}: {exc}", status)
        if refused:
            return lacks_permission(refused)
        return Observation(Outcome.OK, "listed")

    return check


def problem_text(body: bytes) -> str:
    """The words of an RFC 9457 problem (``title: detail``), or of any other error body."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if isinstance(value, dict):
        parts = [str(value[key]) for key in ("title", "detail") if isinstance(value.get(key), str)]
        if parts:
            return ": ".join(parts)
    if is_html(body):
        return "HTML page"
    return error_message(body) if body else "empty body"


def _failure(status: int) -> Outcome:
    if status == 502:
        return Outcome.HTTP_502
    return Outcome.HTTP_5XX if status >= 500 else Outcome.HTTP_4XX


def lacks_permission(refused: list[tuple[str, int, str]]) -> Observation:
    """The scope's finding "RunPod API key lacks pod management permissions", with the
    route that said so; the problem's detail goes to the details, the sentence stays short."""
    kinds = [kind for kind, _, _ in refused]
    what = " and ".join(PERMISSION[k] for k in kinds)
    status = refused[0][1]
    if len(kinds) == 1:  # the ledger quotes this whole: keep it under its 160 characters
        said = f"GET /{ROUTES[kinds[0]][0]} returns {status}; cannot list {ROUTES[kinds[0]][2]}"
    else:
        said = f"GET /pods and /serverless return {status}; cannot list them"
    message = f"key lacks {what} permissions — {said} programmatically"
    return Observation(Outcome.UNAUTHORIZED, message, status,
                       {"refused": {kind: {"http_status": code, "detail": detail}
                                for kind, code, detail in refused}})
