"""Read the engine's load from the Prometheus text of vLLM's ``/metrics``.

Only the few series a probe needs are parsed (the page is 50 KB on a tiny model and a few
hundred KB on a GPU server, mostly histograms we do not use). Values are summed over the
``engine`` label (one per data-parallel rank; absent on old V0 servers), except the
KV-cache usage, a 0..1 fraction per engine, where the fullest engine is what matters.
"""

from __future__ import annotations

import functools
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
        engine, model, value = _known_sample(line) if len(line) <= _KNOWN_MAX else _sample(line)
        if math.isfinite(value):
            values[name].append(value)
            engines.add(engine)
            if model is not None:
                models.add(model)
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


# the names we read after their common "vllm:", as bytes -> their full name
_NAME_OF = {name.removeprefix("vllm:").encode(): name for name in WANTED}
_FAMILIES = b"|".join(re.escape(short) for short in _NAME_OF)
# A sample of a series we read: its name (after "vllm:") and the rest of its line, which
# starts with its labels or the blank before its value. One pass over the page: the regex
# engine looks for the literal "\nvllm:" and tries the six names only there (CPU time: 6.4
# µs on bench/www/metrics.txt, 7 KB, against 19.3 µs for a bytes.find per name, which scans
# the page six times; 32.5 against 75.6 µs on a real 0.32 page of 49 KB).
_SERIES = re.compile(rb"\nvllm:(" + _FAMILIES + rb")([{ \t][^\n]*)")
_SERIES_FIRST = re.compile(rb"vllm:(" + _FAMILIES + rb")([{ \t][^\n]*)")  # the page's first line
_LABEL = re.compile(rb'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\\n]|\\.)*)"'
                    rb'\s*(?:,|$)')
_UNESCAPE = {b"\\\\": "\\", b'\\"': '"', b"\\n": "\n"}


def _wanted_lines(body: bytes) -> list[tuple[str, bytes]]:
    """(series name, the line after the name) of the series we read, in the page's order,
    found without splitting the page (a vLLM page is 50 KB to a few hundred KB, almost all
    of it series we do not read); a malformed series we never read must not fail us."""
    first = _SERIES_FIRST.match(body)
    found = [] if first is None else [(_NAME_OF[first[1]], first[2].rstrip(b"\r"))]
    found += [(_NAME_OF[name], rest.rstrip(b"\r")) for name, rest in _SERIES.findall(body)]
    return found


def _sample(rest: bytes) -> tuple[str, str | None, float]:
    """The ``engine`` label ("" without one), the ``model_name`` label (None without one)
    and the value of one sample line (after its name): ``{labels} value [timestamp]``."""
    engine, model, tail = "", None, rest
    if rest[:1] == b"{":
        close = rest.rfind(b"}")
        if close == -1:
            raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
        text = rest[1:close]
        engine, model = (_known_labels(text) if len(text) <= _KNOWN_MAX
                         else _engine_and_model(text))
        tail = rest[close + 1:]
    parts = tail.split()
    if not 1 <= len(parts) <= 2 or tail[:1] not in (b" ", b"\t"):
        raise NotEngineMetrics(f"/metrics is not Prometheus text: {rest[:80]!r}")
    try:
        return engine, model, float(parts[0])
    except ValueError:
        raise NotEngineMetrics("/metrics is not Prometheus text: "
                               f"value {parts[0][:40]!r}") from None


def _engine_and_model(text: bytes) -> tuple[str, str | None]:
    """The ``engine`` and ``model_name`` labels of a sample's label text (between its
    braces), every label checked."""
    labels: dict[str, str] = {}
    position, length = 0, len(text.rstrip())
    while position < length:
        label = _LABEL.match(text, position)
        if label is None:
            raise NotEngineMetrics(f"/metrics is not Prometheus text: labels {text[:80]!r}")
        labels[label["name"].decode()] = _unescape(label["value"])
        position = label.end()
    return labels.get("engine", ""), labels.get("model_name")


# ``_sample`` and ``_engine_and_model`` remembered for lines and label texts up to this long:
# pure functions of their bytes. The label text of a series is the same at every scrape and
# on every pod serving the same model, and so is a whole line while its value stays (the
# gauges of an idle pod: 0 waiting, 0 running, 0 KV cache); reading the five lines of a
# page took 21-24 µs, 0.8 µs once known (a page: 61 -> 14 µs on 7 KB, 125 -> 43 µs on
# 49 KB). Bounded in entries and in length: pages with ever-new or huge lines only make them
# forget (at most 2 x 1,024 entries of < 0.5 kB). A line that fails is never remembered: it
# fails again the next time.
_KNOWN_MAX = 256
_known_sample = functools.lru_cache(maxsize=1024)(_sample)
_known_labels = functools.lru_cache(maxsize=1024)(_engine_and_model)


def _unescape(raw: bytes) -> str:
    if b"\\" not in raw:
        return raw.decode("utf-8", "replace")
    return re.sub(rb"\\[\\\"n]", lambda m: _UNESCAPE[m[0]].encode(), raw).decode(
        "utf-8", "replace")
