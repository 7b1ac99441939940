"""Render results for people (a table) and for programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.outcome import ProbeResult
from probe.secrets import plain_line
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
        lines.append(f"{head}  {cut(row[-1], width - len(head) - 2)}".rstrip())
    return "\n".join(lines)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut at a word (never mid-word unless one
    word is longer than half of it), with "…" when anything was cut."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:max(width, 0)]
    kept = text[: width - 1]
    space = kept.rfind(" ")
    if text[width - 1] != " " and space >= width // 2:  # the last word was cut: drop it
        kept = kept[:space]
    return kept.rstrip(" ,;:—-") + "…"


# Worst first: what needs a person comes to the top (the status page's order too).
ORDER = {State.DOWN: 0, State.DEGRADED: 1, State.UNKNOWN: 2, State.MAINTENANCE: 3,
         State.UP: 4}
COLOURS = {State.DOWN: "31", State.DEGRADED: "33", State.UNKNOWN: "35",
           State.MAINTENANCE: "36", State.UP: "32"}  # SGR: red, yellow, magenta, cyan, green


@dataclass(frozen=True, slots=True)
class Verdict:
    """One endpoint's line in a verdict summary."""

    name: str
    state: State
    why: str = ""


def summary(verdicts: Iterable[Verdict], colour: bool = False, width: int = 100) -> str:
    """The fleet at a glance: a count by state, then one line per endpoint, worst first,
    each cut at a word to ``width``. ``colour`` repeats the state in colour (a terminal's);
    the word is always there."""
    rows = sorted(verdicts, key=lambda v: (ORDER[v.state], v.name))
    counts = [f"{sum(1 for v in rows if v.state is s)} {s}" for s in ORDER
              if any(v.state is s for v in rows)]
    lines = [f"{len(rows)} endpoint{'' if len(rows) == 1 else 's'}: {', '.join(counts) or 'none'}"]
    name_width = max((len(v.name) for v in rows), default=0)
    for v in rows:
        word = str(v.state).upper().ljust(11)
        head = f"  {word}  {v.name.ljust(name_width)}"
        shown = f"\x1b[{COLOURS[v.state]}m{word}\x1b[0m" if colour else word
        text = f"  {shown}  {v.name.ljust(name_width)}"
        lines.append(f"{text}  {cut(plain_line(v.why), width - len(head) - 2)}".rstrip())
    return "\n".join(lines)


def judged_summary(judged: Mapping[str, SweepVerdict], colour: bool = False,
                   width: int = 100) -> str:
    """``summary`` of a sweep's verdicts (``once``)."""
    return summary((Verdict(name, j.state, why(j)) for name, j in judged.items()), colour,
                   width)


NOT_JUDGED = "not judged yet"


def why(judgement: SweepVerdict) -> str:
    if judgement.state is State.MAINTENANCE or judgement.cause is None:
        return judgement.message if judgement.state is not State.UP else ""
    cause = f"{judgement.cause.check}: {judgement.cause.outcome}"
    return f"{cause} — {judgement.message}" if judgement.message else cause


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
