"""Read the engine's load from the Prometheus text of vLLM's ``/metrics``.

Only the few series a probe needs are parsed (the page is 50 KB on a tiny model and a few
hundred KB on a GPU server, mostly histograms we do not use). Values are summed over the
``engine`` label (one per data-parallel rank; absent on old V0 servers), except the
KV-cache usage, a 0..1 fraction per engine, where the fullest engine is what matters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
KV_CACHE_OLD = "vllm:gpu_cache_usage_perc"  # before vLLM 0.11; gone in 0.12
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
WANTED = (WAITING, RUNNING, KV_CACHE, KV_CACHE_OLD, GENERATION_TOKENS, PROMPT_TOKENS)
REQUIRED = (WAITING, RUNNING, GENERATION_TOKENS)


class NotEngineMetrics(ValueError):
    """The page cannot be read, or lacks the series needed to judge the engine."""


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One scrape of one vLLM server."""

    waiting: float
    running: float
    generation_tokens_total: float
    kv_cache_usage: float | None = None
    prompt_tokens_total: float | None = None
    engines: int = 1
    models: tuple[str, ...] = ()


def parse_engine_load(page: bytes | str) -> EngineLoad:
    """The engine load in a /metrics page (text format 0.0.4 or 1.0.0)."""
    body = page.encode("utf-8", "replace") if isinstance(page, str) else page
    values: dict[str, list[float]] = {name: [] for name in WANTED}
    engines: set[str] = set()
    models: set[str] = set()
    for name, line in _wanted_lines(body):
        labels, value = _sample(line)
        if math.isfinite(value):
            values[name].append(value)
            engines.add(labels.get("engine", ""))
            if "model_name" in labels:
                models.add(labels["model_name"])
    missing = [name for name in REQUIRED if not values[name]]
    if missing:
        raise NotEngineMetrics(f"/metrics has no {', '.join(missing)} (not a vLLM server?)")
    kv = values[KV_CACHE] or values[KV_CACHE_OLD]
    prompt = values[PROMPT_TOKENS]
    return EngineLoad(
        waiting=sum(values[WAITING]), running=sum(values[RUNNING]),
        generation_tokens_total=sum(values[GENERATION_TOKENS]),
        kv_cache_usage=max(kv) if kv else None, prompt_tokens_total=sum(prompt) if prompt else None,
        engines=max(len(engines), 1), models=tuple(sorted(models)),
    )


_NAMES = tuple((name, name.encode()) for name in WANTED)
# after a series' name: its labels, or the space before its value
_AFTER_NAME = frozenset(b"{ \t")
_LABEL = re.compile(rb'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\\n]|\\.)*)"'
                    rb'\s*(?:,|$)')
_UNESCAPE = {b"\\\\": "\\", b'\\"': '"', b"\\n": "\n"}


def _wanted_lines(body: bytes) -> list[tuple[str, bytes]]:
    """(series name, the line after the name) of the series we read, found without
    splitting the page (a vLLM page is 50 KB to a few hundred KB, almost all of it series
    we do not read); a malformed series we never read must not fail us."""
    found: list[tuple[str, bytes]] = []
    for name, key in _NAMES:
        at = 0 if body.startswith(key) else body.find(b"\n" + key)
        while at != -1:
            begin = at + len(key) + (1 if body[at:at + 1] == b"\n" else 0)
            end = body.find(b"\n", begin)
            rest = body[begin:] if end == -1 else body[begin:end]
            if rest[:1] and rest[0] in _AFTER_NAME:
                found.append((name, rest.rstrip(b"\r")))
            at = -1 if end == -1 else body.find(b"\n" + key, end)
    return found


def _sample(rest: bytes) -> tuple[dict[str, str], float]:
    """The labels and value of one sample line (after its name): ``{labels} value
    [timestamp]``."""
    labels: dict[str, str] = {}
    tail = rest
    if rest[:1] == b"{":
        close = rest.rfind(b"}")
        if close == -1:
            raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
        text, tail = rest[1:close], rest[close + 1:]
        position, length = 0, len(text.rstrip())
        while position < length:
            label = _LABEL.match(text, position)
            if label is None:
                raise NotEngineMetrics(f"/metrics is not Prometheus text: labels {text[:80]!r}")
            labels[label["name"].decode()] = _unescape(label["value"])
            position = label.end()
    parts = tail.split()
    if not 1 <= len(parts) <= 2 or tail[:1] not in (b" ", b"\t"):
        raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
    try:
        return labels, float(parts[0])
    except ValueError:
        raise NotEngineMetrics("/metrics is not Prometheus text: "
                               f"value {parts[0][:40]!r}") from None


def _unescape(raw: bytes) -> str:
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    return re.sub(rb"\\[\\\"n]", lambda m: _UNESCAPE[m[0]].encode(), raw).decode(
        "utf-8", "replace")
