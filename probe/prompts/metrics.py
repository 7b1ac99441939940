"""Prompt metrics: pass per endpoint and prompt, and the tokens probing spent (so users see
what probing costs); with ``metrics: {per_check: true}`` also each prompt's TTFT and
total-time histograms and decode rate (a prompt's latency is otherwise in the endpoint's
``latency_seconds{check_kind="generation"}``).

Results reach ``PromptMetrics.observe`` as a prober observer (event loop); /metrics reads a
copy under the same lock from its own thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from probe.config.model import Config
from probe.exposition.keyed import KeyedLines
from probe.exposition.text import Family
from probe.job import Job
from probe.metrics import P
from probe.outcome import ProbeResult
from probe.prompts.model import CHECK_PREFIX
from probe.state import Histogram

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
TOTAL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
Key = tuple[str, str]  # (endpoint, prompt name)


class PromptMetrics(Collector):
    """Fed by the prober (one result at a time), read by the /metrics thread under one lock.
    Every planned prompt is declared, so a prompt that never ran shows as not passing. Each
    prompt's timings (TTFT, duration, decode rate) are kept only with ``per_check``, the
    only way they are shown."""

    def __init__(self, per_check: bool = False, native: bool = False) -> None:
        self.per_check = per_check
        self.native = native  # ``metrics: {native_histograms: true}``
        self._lock = threading.Lock()
        self.ttft: dict[Key, Histogram] = {}
        self.total: dict[Key, Histogram] = {}
        self.tokens_per_s: dict[Key, float] = {}
        # the decode rate as counters: completion tokens, and the seconds they took
        self.decoded: Counter[Key] = Counter()
        self.decode_s: dict[Key, float] = {}
        # the two families every pod has, kept as written when they change (``KeyedLines``):
        # planned (endpoint, prompt) -> 1 when its last answer passed, else 0; and
        # (endpoint, "prompt"|"completion") -> tokens spent
        self._passes = KeyedLines([_pass_family()])
        self._spending = KeyedLines([_spent_family()])

    def on_plan(self, config: Config, jobs: Sequence[Job]) -> None:
        planned = {(job.endpoint.name, check[len(CHECK_PREFIX):])
                   for job in jobs for check in job.checks if check.startswith(CHECK_PREFIX)}
        with self._lock:
            for key in self._passes.keys():
                if key not in planned:
                    self._passes.drop(key)
            for key in planned:
                if self._passes.get(key) is None:
                    self._passes.put(key, [0])  # never run: not passing
            # an endpoint that will spend tokens has spent none yet: its counters start at 0
            # (so the first answer's tokens are an increase rate() sees, and no new series
            # appears later: each would re-sort the lines of the page's next scrape)
            for name in {name for name, _ in planned}:
                for kind in ("prompt", "completion"):
                    if self._spending.get((name, kind)) is None:
                        self._spending.put((name, kind), [0])

    def observe(self, result: ProbeResult, row_id: int | None = None) -> None:
        details = result.details
        with self._lock:
            usage = details.get("usage")
            if isinstance(usage, dict):
                for kind in ("prompt", "completion"):
                    tokens = usage.get(f"{kind}_tokens")
                    if isinstance(tokens, int):
                        spent = (result.endpoint, kind)
                        before = self._spending.get(spent)
                        self._spending.put(spent, [(before[0] or 0 if before else 0) + tokens])
            if not result.check.startswith(CHECK_PREFIX):
                return
            key = (result.endpoint, result.check[len(CHECK_PREFIX):])
            if self._passes.get(key) is not None:  # planned
                self._passes.put(key, [1 if result.ok else 0])
            if not self.per_check:
                return  # the timings are shown only per check: not kept (~1.3 kB a pod)
            if not isinstance(usage, dict):
                return  # timings of an incomplete answer would flatter or smear the histograms
            if isinstance(details.get("ttft_s"), float | int):
                self.ttft.setdefault(key, Histogram.of(TTFT_BUCKETS, self.native)).observe(
                    details["ttft_s"])
            if isinstance(details.get("total_s"), float | int):
                self.total.setdefault(key, Histogram.of(TOTAL_BUCKETS, self.native)).observe(
                    details["total_s"])
            if isinstance(details.get("tokens_per_s"), float | int):
                self.tokens_per_s[key] = float(details["tokens_per_s"])
            completion, total, ttft = (usage.get("completion_tokens"), details.get("total_s"),
                                       details.get("ttft_s"))
            if isinstance(completion, int) and isinstance(total, float | int) \
                    and isinstance(ttft, float | int) and total > ttft:
                self.decoded[key] += completion
                self.decode_s[key] = self.decode_s.get(key, 0.0) + float(total - ttft)

    def collect(self) -> Iterator[Metric]:
        passes, tokens = _pass_family(), _spent_family()
        self._passes.fill([passes])
        self._spending.fill([tokens])
        yield passes
        yield tokens
        if not self.per_check:
            return
        with self._lock:
            ttft = {k: h.copy() for k, h in self.ttft.items()}
            total = {k: h.copy() for k, h in self.total.items()}
            tokens_per_s = dict(self.tokens_per_s)
            decoded, decode_s = Counter(self.decoded), dict(self.decode_s)
        yield _histogram(P + "prompt_ttft_seconds", "Time to the first content token of prompt "
                         "answers (role-only chunks do not count).", ttft)
        yield _histogram(P + "prompt_duration_seconds", "Total time of prompt answers, request "
                         "to [DONE].", total)
        rate = Family(P + "prompt_tokens_per_second", "Decode rate of the last "
                      "answer: completion tokens / (total - TTFT).",
                      "gauge", labels=["endpoint", "prompt"])
        for key, value in sorted(tokens_per_s.items()):
            rate.add_metric(list(key), value)
        yield rate
        completed = Family(P + "prompt_completion_tokens", "Completion tokens of complete "
                           "answers (with prompt_decode_seconds_total: the decode rate over any "
                           "window).", "counter", labels=["endpoint", "prompt"])
        seconds = Family(P + "prompt_decode_seconds", "Time from the first content token to "
                         "[DONE] of complete answers.", "counter", labels=["endpoint", "prompt"])
        for key in sorted(decoded):
            completed.add_metric(list(key), decoded[key])
            seconds.add_metric(list(key), decode_s[key])
        yield from (completed, seconds)


def _pass_family() -> Family:
    return Family(P + "prompt_pass", "1 when the prompt's last answer passed every "
                  "expectation; 0 otherwise (never run, failed, skipped).", "gauge",
                  labels=["endpoint", "prompt"])


def _spent_family() -> Family:
    return Family(P + "tokens_spent", "Tokens spent by probing, as reported by the server's "
                  "usage.", "counter", labels=["endpoint", "type"])


def _histogram(name: str, text: str, data: dict[Key, Histogram]) -> Metric:
    family = Family(name, text, "histogram", labels=["endpoint", "prompt"])
    for key, histogram in sorted(data.items()):
        family.add_metric(list(key), histogram.buckets(), histogram.total, histogram.native)
    return family
