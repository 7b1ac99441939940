"""Prompt metrics: pass per endpoint and prompt, TTFT and total-time histograms, decode
rate, and the tokens probing spent (so users see what probing costs).

Results reach ``PromptStats.observe`` as a prober observer (event loop); /metrics reads a
copy under the same lock from its own thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from probe.metrics import P
from probe.outcome import ProbeResult
from probe.prompts.model import CHECK_PREFIX
from probe.state import Histogram, Snapshot

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
TOTAL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
STATS_KEY = "prompts"
Key = tuple[str, str]  # (endpoint, prompt name)


class PromptStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ttft: dict[Key, Histogram] = {}
        self.total: dict[Key, Histogram] = {}
        self.tokens_per_s: dict[Key, float] = {}
        self.spent: Counter[tuple[str, str]] = Counter()  # (endpoint, "prompt"|"completion")

    def observe(self, result: ProbeResult, row_id: int | None = None) -> None:
        details = result.details
        with self._lock:
            usage = details.get("usage")
            if isinstance(usage, dict):
                for kind in ("prompt", "completion"):
                    tokens = usage.get(f"{kind}_tokens")
                    if isinstance(tokens, int):
                        self.spent[(result.endpoint, kind)] += tokens
            if not result.check.startswith(CHECK_PREFIX) or not isinstance(usage, dict):
                return  # timings of an incomplete answer would flatter or smear the histograms
            key = (result.endpoint, result.check[len(CHECK_PREFIX):])
            if isinstance(details.get("ttft_s"), float | int):
                self.ttft.setdefault(key, Histogram(TTFT_BUCKETS)).observe(details["ttft_s"])
            if isinstance(details.get("total_s"), float | int):
                self.total.setdefault(key, Histogram(TOTAL_BUCKETS)).observe(details["total_s"])
            if isinstance(details.get("tokens_per_s"), float | int):
                self.tokens_per_s[key] = float(details["tokens_per_s"])

    def copy(self) -> PromptStats:
        with self._lock:
            clone = PromptStats()
            clone.ttft = {k: h.copy() for k, h in self.ttft.items()}
            clone.total = {k: h.copy() for k, h in self.total.items()}
            clone.tokens_per_s = dict(self.tokens_per_s)
            clone.spent = Counter(self.spent)
            return clone


def _histogram(name: str, text: str, data: dict[Key, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, text, labels=["endpoint", "prompt"])
    for key, histogram in sorted(data.items()):
        family.add_metric(list(key), histogram.buckets(), histogram.total)
    return family


def provide(snap: Snapshot) -> Iterator[Metric]:
    passed = GaugeMetricFamily(P + "prompt_pass", "1 when the prompt's last answer passed "
                               "every expectation; 0 otherwise (never run, failed, skipped).",
                               labels=["endpoint", "prompt"])
    for (endpoint, check), state in sorted(snap.checks.items()):
        if check.startswith(CHECK_PREFIX):
            ok = state.latest is not None and state.latest.ok
            passed.add_metric([endpoint, check[len(CHECK_PREFIX):]], 1 if ok else 0)
    yield passed
    stats = snap.extra.get(STATS_KEY)
    if not isinstance(stats, PromptStats):
        return
    stats = stats.copy()
    yield _histogram(P + "prompt_ttft_seconds", "Time to the first content token of prompt "
                     "answers (role-only chunks do not count).", stats.ttft)
    yield _histogram(P + "prompt_duration_seconds", "Total time of prompt answers, request "
                     "to [DONE].", stats.total)
    rate = GaugeMetricFamily(P + "prompt_tokens_per_second", "Decode rate of the last answer: "
                             "completion tokens / (total - TTFT).", labels=["endpoint", "prompt"])
    for key, value in sorted(stats.tokens_per_s.items()):
        rate.add_metric(list(key), value)
    yield rate
    spent = CounterMetricFamily(P + "tokens_spent", "Tokens spent by probing, as reported by "
                                "the server's usage.", labels=["endpoint", "type"])
    for (endpoint, kind), tokens in sorted(stats.spent.items()):
        spent.add_metric([endpoint, kind], tokens)
    yield spent


def attach(daemon: Any) -> Callable[[], None] | None:
    """Daemon start-up hook: collect prompt stats (every planned check, prompts included, is
    declared by ``FleetState.configure``, so a prompt that never ran shows as not passing)."""
    stats = PromptStats()
    daemon.state.extra[STATS_KEY] = stats
    daemon.prober.observers.append(stats.observe)
    return None
