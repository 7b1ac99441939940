"""The vllm_metrics check and the /metrics reader against canned pages (unit level).

The 0.32 page is a real scrape of vLLM 0.32 (CPU build, tiny model, 6 concurrent requests
with --max-num-seqs 4); the older shapes follow the reference notes, section 4.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import endpoint, spec
from local_server import answering

from probe.attempts import run_check
from probe.check import ANSWERED_AT, CheckContext
from probe.outcome import Observation, Outcome, ProbeResult
from probe.vllm import scrape as vllm_metrics
from probe.vllm.load import EngineLoad, NotEngineMetrics, parse_engine_load

REAL_0_32 = (Path(__file__).parent.parent / "data" / "vllm" / "metrics-0.32-busy.txt").read_text()
TEXT_1_0 = "text/plain; version=1.0.0; charset=utf-8"
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"


def page(waiting: float, running: float, tokens: float, kv: float | None = 0.25,
         engines: tuple[str, ...] = ("0",), kv_name: str = "vllm:kv_cache_usage_perc",
         type_lines: bool = True) -> str:
    """A vLLM /metrics page with one value per engine (``""``: no engine label, as on V0)."""
    lines: list[str] = []

    def family(name: str, kind: str, value: float) -> None:
        if type_lines:
            lines.append(f"# HELP {name} x")
            lines.append(f"# TYPE {name} {kind}")
        for engine in engines:
            labels = (f'engine="{engine}",' if engine else "") + 'model_name="m"'
            sample = name if kind != "counter" or name.endswith("_total") else f"{name}_total"
            lines.append(f"{sample}{{{labels}}} {value}")

    family("vllm:num_requests_running", "gauge", running)
    family("vllm:num_requests_waiting", "gauge", waiting)
    if kv is not None:
        family(kv_name, "gauge", kv)
    family("vllm:generation_tokens", "counter", tokens)  # older clients: TYPE with base name
    return "\n".join(lines) + "\n"


READS = [
    ("real-0.32-busy", REAL_0_32,
     EngineLoad(2.0, 4.0, 133.0, 0.0004883408619216212, 72.0, 1, ("tiny-llama",))),
    ("v0-no-engine-label-old-cache-name", page(3, 1, 50, kv=0.5, engines=("",),
                                               kv_name="vllm:gpu_cache_usage_perc"),
     EngineLoad(3.0, 1.0, 50.0, 0.5, None, 1, ("m",))),
    ("data-parallel-sums-and-fullest-kv", page(2, 4, 100, kv=0.3, engines=("0", "1")),
     EngineLoad(4.0, 8.0, 200.0, 0.3, None, 2, ("m",))),
    ("no-kv-cache-metric", page(0, 0, 7, kv=None), EngineLoad(0.0, 0.0, 7.0, None, None, 1, ("m",))),
    ("no-type-lines", page(1, 2, 3, type_lines=False),
     EngineLoad(1.0, 2.0, 3.0, 0.25, None, 1, ("m",))),
]


@pytest.mark.parametrize(("text", "expected"), [r[1:] for r in READS], ids=[r[0] for r in READS])
def test_reads_engine_load(text: str, expected: EngineLoad) -> None:
    assert parse_engine_load(text) == expected


def test_new_kv_name_wins_over_the_old_one() -> None:
    both = page(0, 0, 1, kv=0.1) + 'vllm:gpu_cache_usage_perc{model_name="m"} 0.9\n'
    assert parse_engine_load(both).kv_cache_usage == 0.1


def test_waiting_by_reason_is_not_counted_as_waiting() -> None:
    text = page(2, 0, 1) + ('vllm:num_requests_waiting_by_reason{engine="0",model_name="m",'
                            'reason="capacity"} 2.0\n')
    assert parse_engine_load(text).waiting == 2


def test_a_malformed_series_we_do_not_read_is_ignored() -> None:
    text = "some_other_metric{a=b} not-a-number\n" + page(1, 1, 1)
    assert parse_engine_load(text).waiting == 1


def test_label_values_with_escapes_braces_and_a_timestamp_are_read() -> None:
    text = (page(1, 1, 1) + 'vllm:prompt_tokens_total{engine="0",model_name="a\\"b}c"} 5 '
            "1700000000000\n")
    assert parse_engine_load(text).models == ('a"b}c', "m")
    assert parse_engine_load(text.encode()).prompt_tokens_total == 5


BAD_PAGES = [
    ("empty", "", "vllm:num_requests_waiting"),
    ("html", "<html><body>Bad gateway</body></html>", "not a vLLM server"),
    ("not-vllm", "process_open_fds 3.0\n", "vllm:num_requests_waiting"),
    ("no-generation-tokens", 'vllm:num_requests_waiting{engine="0"} 1\n'
                             'vllm:num_requests_running{engine="0"} 1\n',
     "vllm:generation_tokens_total"),
    ("malformed-value", 'vllm:num_requests_waiting{engine="0"} lots\n', "not Prometheus text"),
    ("nan-is-no-value", page(1, 1, float("nan")), "vllm:generation_tokens_total"),
    ("malformed-labels", page(1, 1, 1) + 'vllm:num_requests_running{engine=0} 1\n',
     "not Prometheus text"),
    ("unclosed-labels", page(1, 1, 1) + 'vllm:num_requests_running{engine="0" 1\n',
     "not Prometheus text"),
    ("no-value", page(1, 1, 1) + 'vllm:num_requests_running{engine="0"}\n',
     "not Prometheus text"),
]


@pytest.mark.parametrize(("text", "why"), [b[1:] for b in BAD_PAGES], ids=[b[0] for b in BAD_PAGES])
def test_pages_without_engine_metrics_are_refused(text: str, why: str) -> None:
    with pytest.raises(NotEngineMetrics, match=why):
        parse_engine_load(text)


def serve(*bodies: str, content_type: str = TEXT_1_0, status: int = 200) -> Any:
    """A handler answering the given pages in order, then repeating the last one."""
    pages: Iterator[str] = iter(bodies)
    last = [bodies[-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        body = next(pages, last[0])
        return httpx.Response(status, content=body.encode(), headers={"content-type":
                                                                       content_type})

    return handler


def check(handler: Any, ctx: CheckContext | None = None, runs: int = 1,
          **overrides: Any) -> list[Observation]:
    ctx = ctx or CheckContext()

    async def go() -> list[Observation]:
        async with answering(handler) as client:
            return [await vllm_metrics.check(endpoint(**overrides), client, ctx)
                    for _ in range(runs)]

    return asyncio.run(go())


@pytest.mark.parametrize("content_type", [TEXT_1_0, TEXT_0_0_4, "text/plain"],
                         ids=["format-1.0.0", "format-0.0.4", "no-version"])
def test_real_page_in_either_text_format(content_type: str) -> None:
    (verdict,) = check(serve(REAL_0_32, content_type=content_type))
    # requests wait and there is nothing to compare with yet: read, but not a pass
    assert verdict.outcome is Outcome.UNKNOWN, verdict.message
    assert verdict.details["waiting"] == 2 and verdict.details["running"] == 4
    assert verdict.details["generation_tokens_per_s"] is None  # one scrape: no rate yet
    assert "2 waiting, 4 running: progress not judged yet" in verdict.message


def test_one_cap_for_every_body() -> None:
    """scheduler.max_body_bytes caps vLLM's /metrics page like any other body."""
    assert len(REAL_0_32) > 40_000
    (fits,) = check(serve(REAL_0_32), CheckContext(max_body_bytes=len(REAL_0_32) + 10))
    assert fits.details["waiting"] == 2

    async def go() -> ProbeResult:
        async with answering(serve(REAL_0_32)) as client:
            return await run_check("vllm_metrics", spec("vllm_metrics", vllm_metrics.check),
                                   endpoint(), client, CheckContext(max_body_bytes=40_000))

    over = asyncio.run(go())
    assert over.outcome is Outcome.BAD_RESPONSE and "larger than 40000 bytes" in over.message


def test_page_over_the_metrics_cap_is_a_bad_response() -> None:
    huge = REAL_0_32 * (CheckContext().max_body_bytes // len(REAL_0_32) + 1)

    async def go() -> ProbeResult:
        async with answering(serve(huge)) as client:
            return await run_check("vllm_metrics", spec("vllm_metrics", vllm_metrics.check), endpoint(), client,
                                   CheckContext())

    result = asyncio.run(go())
    assert result.outcome is Outcome.BAD_RESPONSE and "larger than" in result.message


STATUSES = [
    ("stopped-pod", 404, "<html>404</html>", Outcome.HTTP_404),
    ("server-down", 502, "<html>502 Bad Gateway</html>", Outcome.HTTP_502),
    ("html-200", 200, "<html><body>hello</body></html>", Outcome.BAD_RESPONSE),
]


@pytest.mark.parametrize(("status", "body", "outcome"), [s[1:] for s in STATUSES],
                         ids=[s[0] for s in STATUSES])
def test_failed_scrapes(status: int, body: str, outcome: Outcome) -> None:
    (verdict,) = check(serve(body, status=status, content_type="text/html"))
    assert verdict.outcome is outcome, verdict.message
    assert "waiting" not in verdict.details  # nothing observed: no values to export


def test_stuck_after_the_configured_number_of_frozen_scrapes() -> None:
    frozen = page(waiting=5, running=0, tokens=100)
    verdicts = check(serve(frozen), runs=4, extra={"stuck_after": 3})
    assert [v.outcome for v in verdicts] == [Outcome.UNKNOWN, Outcome.UNKNOWN,
                                             Outcome.ENGINE_STUCK, Outcome.ENGINE_STUCK]
    assert [v.details["stuck_streak"] for v in verdicts] == [1, 2, 3, 4]
    assert "5 waiting" in verdicts[2].message and "stayed at 100" in verdicts[2].message


def test_default_stuck_after_is_three() -> None:
    verdicts = check(serve(page(5, 0, 100)), runs=3)
    assert [v.outcome for v in verdicts][-2:] == [Outcome.UNKNOWN, Outcome.ENGINE_STUCK]


def test_tokens_moving_with_a_queue_is_busy_not_stuck() -> None:
    pages = [page(5, 4, 100 + 50 * i) for i in range(5)]
    verdicts = check(serve(*pages), runs=5, extra={"stuck_after": 2})
    assert verdicts[0].outcome is Outcome.UNKNOWN, "nothing to compare the first with"
    assert all(v.ok for v in verdicts[1:]), [v.message for v in verdicts]
    assert all(v.details["generation_tokens_per_s"] > 0 for v in verdicts[1:])


def test_memory_is_per_context() -> None:
    frozen = serve(page(5, 0, 100))
    first, second = CheckContext(), CheckContext()
    check(frozen, first, runs=2, extra={"stuck_after": 2})
    (fresh,) = check(frozen, second, extra={"stuck_after": 2})
    assert fresh.outcome is Outcome.UNKNOWN and fresh.details["stuck_streak"] == 1


def test_an_idle_engine_is_judged_at_once() -> None:
    (verdict,) = check(serve(page(0, 0, 100)))
    assert verdict.ok, verdict.message


def test_an_answer_the_engine_completed_contradicts_frozen_counters() -> None:
    """A static /metrics page while the daemon's own prompts are answered: not stuck."""
    ctx = CheckContext()
    frozen = serve(page(5, 0, 100))
    first, = check(frozen, ctx, extra={"stuck_after": 3})
    ctx.shared[ANSWERED_AT] = time.time()  # the prompt check saw a completed answer
    second, = check(frozen, ctx, extra={"stuck_after": 3})
    assert second.outcome is Outcome.OK and second.details["answered_since_last_scrape"]
    third, = check(frozen, ctx, extra={"stuck_after": 3})
    assert third.outcome is Outcome.UNKNOWN, "no answer since: the stall is watched again"
    fourth, = check(frozen, ctx, extra={"stuck_after": 3})
    assert fourth.outcome is Outcome.ENGINE_STUCK


def test_the_stall_survives_a_restart() -> None:
    """Two frozen scrapes, a restart (only the durable memory is kept, as JSON), one more
    frozen scrape: stuck at the configured third, with no recovery in between."""
    durable: dict[str, Any] = {}
    frozen = serve(page(5, 0, 100))
    check(frozen, CheckContext(durable=durable), runs=2, extra={"stuck_after": 3})
    restarted = CheckContext(durable=json.loads(json.dumps(durable)))
    (after,) = check(frozen, restarted, extra={"stuck_after": 3})
    assert after.outcome is Outcome.ENGINE_STUCK and after.details["stuck_streak"] == 3


def test_every_changed_page_is_read_again_with_remembered_lines() -> None:
    """Lines and labels read once are remembered (``probe.vllm.load``): each new page is
    still read for what it says, a counter that goes back (a restart) is a reset, and a page
    that repeats an earlier one reads as it did then."""
    pages = [page(0, 1, 100), page(0, 1, 150), page(3, 0, 20), page(0, 1, 150),
             page(0, 1, 150)]
    verdicts = check(serve(*pages), runs=len(pages))
    read = [(v.details["waiting"], v.details["running"], v.details["generation_tokens_total"],
             v.details["counter_reset"]) for v in verdicts]
    assert read == [(0, 1, 100, False), (0, 1, 150, False), (3, 0, 20, True),
                    (0, 1, 150, False), (0, 1, 150, False)]
    assert all(v.outcome is Outcome.OK for v in verdicts)  # tokens moved after the reset
