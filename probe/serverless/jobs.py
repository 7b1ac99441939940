"""RunPod job answers (``/runsync``, ``/status/{id}``, ``/cancel/{id}``) as ``JobReport``s,
and the bounded requests that fetch them.

Shapes come from RunPod's API and its own local worker server: ``delayTime`` (queue + cold
start) and ``executionTime`` are milliseconds and appear only once known; ``error`` is a
string that the runpod SDK fills with a JSON document (``error_type``, ``error_message``...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from probe.http import BadBody
from probe.net import ProbeClient, read_capped

PENDING = frozenset({"IN_QUEUE", "IN_PROGRESS", "RUNNING"})  # RUNNING: docs-only synonym
FAILED = frozenset({"FAILED", "CANCELLED", "TIMED_OUT"})
STATUSES = PENDING | FAILED | {"COMPLETED"}


@dataclass(frozen=True, slots=True)
class JobReport:
    id: str | None
    status: str
    delay_s: float | None = None
    execution_s: float | None = None
    error: str | None = None
    worker_id: str | None = None
    has_output: bool = False

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def parse_job(document: dict[str, Any]) -> JobReport:
    status = document.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        raise BadBody(f"job status {status!r} is not one of {', '.join(sorted(STATUSES))}")
    job_id = document.get("id")
    worker = document.get("workerId")
    return JobReport(
        id=job_id if isinstance(job_id, str) and job_id else None,
        status=status,
        delay_s=_ms(document, "delayTime"),
        execution_s=_ms(document, "executionTime"),
        error=error_text(document.get("error")),
        worker_id=worker if isinstance(worker, str) else None,
        has_output="output" in document,
    )


def _ms(document: dict[str, Any], key: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadBody(f"{key} is not a non-negative number of milliseconds: {value!r}"[:160])
    return value / 1000


def error_text(error: Any) -> str | None:
    """The human part of a job error: the SDK's JSON string, an object, or plain text."""
    if error is None or error == "":
        return None
    if isinstance(error, str):
        try:
            decoded = json.loads(error)
        except ValueError:
            return error[:500]
        error = decoded
    if isinstance(error, dict):
        for key in ("error_message", "message", "error"):
            if isinstance(error.get(key), str):
                kind = error.get("error_type")
                prefix = f"{kind}: " if isinstance(kind, str) else ""
                return (prefix + str(error[key]))[:500]
    return json.dumps(error)[:500]


async def send(client: ProbeClient, method: str, url: str, headers: dict[str, str],
               limit: int, payload: Any = None) -> tuple[int, bytes, httpx.Headers]:
    """One request with a JSON body (if any); the answer is read up to ``limit`` bytes."""
    content = None if payload is None else json.dumps(payload).encode()
    if content is not None:
        headers = {**headers, "Content-Type": "application/json"}
    async with client.stream(method, url, headers=headers, content=content) as response:
        body = await read_capped(response, limit)
        return response.status_code, body, response.headers
