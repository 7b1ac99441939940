"""The Prometheus ``/metrics`` page of one simulated vLLM server (0.32 names and labels).

Counters grow as the pod serves chat requests, so a probe can see tokens flowing, or
frozen with requests piling up in ``waiting`` when the engine is stuck.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

METRICS_TYPE = "text/plain; version=1.0.0; charset=utf-8"
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
_KV_PER_RUNNING_REQUEST = 0.02


def _num(value: float) -> str:
    return repr(float(value))


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        for bound, hits in zip(self.buckets, self.counts, strict=True):
            cumulative += hits
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {_num(cumulative)}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {_num(self.count)}')
        out.append(f"{name}_count{{{labels}}} {_num(self.count)}")
        out.append(f"{name}_sum{{{labels}}} {_num(self.total)}")
        return out


@dataclass(slots=True)
class PodMetrics:
    """Engine counters of one pod. Touched only on the simulator's event loop."""

    running: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINISH_REASONS, 0))
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    # requests seen per path by the behaviours that count them (``flaky``)
    requests: dict[str, int] = field(default_factory=dict)

    def started(self) -> None:
        self.running += 1

    def finished(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        reason: str,
        ttft_s: float | None,
        e2e_s: float,
    ) -> None:
        self.running -= 1
        self.prompt_tokens += prompt_tokens
        self.generation_tokens += completion_tokens
        self.success[reason] = self.success.get(reason, 0) + 1
        if ttft_s is not None:
            self.ttft.observe(ttft_s)
        self.e2e.observe(e2e_s)

    def render(self, model: str, waiting: int = 0) -> bytes:
        labels = f'engine="0",model_name="{model}"'
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)

        gauge = "gauge"
        family(
            "vllm:num_requests_running",
            gauge,
            "Number of requests in model execution batches.",
            [f"vllm:num_requests_running{{{labels}}} {_num(self.running)}"],
        )
        family(
            "vllm:num_requests_waiting",
            gauge,
            "Number of requests waiting to be processed.",
            [f"vllm:num_requests_waiting{{{labels}}} {_num(waiting)}"],
        )
        usage = min(1.0, self.running * _KV_PER_RUNNING_REQUEST)
        family(
            "vllm:kv_cache_usage_perc",
            gauge,
            "KV-cache usage. 1 means 100 percent usage.",
            [f"vllm:kv_cache_usage_perc{{{labels}}} {_num(usage)}"],
        )
        family(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            [f"vllm:prompt_tokens_total{{{labels}}} {_num(self.prompt_tokens)}"],
        )
        family(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            [f"vllm:generation_tokens_total{{{labels}}} {_num(self.generation_tokens)}"],
        )
        family(
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            [
                f'vllm:request_success_total{{{labels},finished_reason="{reason}"}} {_num(n)}'
                for reason, n in self.success.items()
            ],
        )
        family(
            "vllm:time_to_first_token_seconds",
            "histogram",
            "Histogram of time to first token in seconds.",
            self.ttft.lines("vllm:time_to_first_token_seconds", labels),
        )
        family(
            "vllm:e2e_request_latency_seconds",
            "histogram",
            "Histogram of e2e request latency in seconds.",
            self.e2e.lines("vllm:e2e_request_latency_seconds", labels),
        )
        return ("\n".join(lines) + "\n").encode()
