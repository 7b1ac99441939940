"""Render results for people (a table) and for programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from probe.outcome import ProbeResult
from probe.verdict import State, SweepVerdict, instant

COLUMNS = ("ENDPOINT", "KIND", "CHECK", "OUTCOME", "HTTP", "LATENCY", "TRIES", "MESSAGE")


def result_dict(result: ProbeResult) -> dict[str, Any]:
    return {
        "endpoint": result.endpoint, "kind": result.kind, "check": result.check,
        "outcome": str(result.outcome), "ok": result.ok, "http_status": result.http_status,
        "latency_s": round(result.latency_s, 4), "attempts": result.attempts,
        "url": result.url, "message": result.message,
        "started_at": result.started_at.isoformat(timespec="milliseconds"),
        "details": result.details,
    }


def to_json(results: Iterable[ProbeResult]) -> str:
    return json.dumps([result_dict(r) for r in results], indent=2, default=str)


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] = COLUMNS,
          width: int = 160) -> str:
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    lines = []
    for row in cells:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        line = f"{head}  {row[-1]}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)


def result_rows(results: Iterable[ProbeResult]) -> list[list[str]]:
    return [[r.endpoint, r.kind, r.check, str(r.outcome) + (" (retried)" if r.ok and r.retried
                                                           else ""),
             "-" if r.http_status is None else str(r.http_status), f"{r.latency_s * 1000:.0f}ms",
             str(r.attempts), r.message] for r in results]


def verdicts(results: Iterable[ProbeResult]) -> dict[str, SweepVerdict]:
    """Each endpoint's verdict on these results (``probe.verdict.instant``), by name."""
    by_endpoint: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_endpoint.setdefault(r.endpoint, []).append(r)
    return {name: instant(rs) for name, rs in sorted(by_endpoint.items())}


def verdict_rows(judged: dict[str, SweepVerdict]) -> list[list[str]]:
    return [[name, str(j.state), j.message if j.state is State.MAINTENANCE else
             f"{j.cause.check}: {j.cause.outcome}" if j.cause else "-"]
            for name, j in judged.items()]


VERDICT_COLUMNS = ("ENDPOINT", "VERDICT", "CAUSE")
