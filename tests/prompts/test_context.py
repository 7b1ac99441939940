"""Passive context fit against canned /v1/models answers (unit level: tests/local_server.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from helpers import config_of, endpoint, role_of
from local_server import answering

from probe.app import PLUGINS
from probe.check import CheckContext
from probe.outcome import CheckRole, Observation, Outcome, ProbeResult
from probe.prober import Prober
from probe.prompts import context
from probe.prompts.model import COMPLETION_KEY, ContextSettings
from probe.state import FleetState


def models(max_len: int | None, status: int = 200) -> Any:
    card: dict[str, Any] = {"id": "Q", "object": "model"}
    if max_len is not None:
        card["max_model_len"] = max_len
    return lambda request: httpx.Response(status, json={"data": [card]})


def run(handler: Any, extra: dict[str, Any]) -> Observation:
    async def go() -> Observation:
        async with answering(handler) as client:
            params = {k: v for k, v in extra.items() if k == COMPLETION_KEY}
            own = {k: v for k, v in extra.items() if k != COMPLETION_KEY}
            return await context.check(endpoint(extra=own), client,
                                       CheckContext(params=params))

    return asyncio.run(go())


CASES = [
    ("fits", models(32768), Outcome.OK, "max_model_len 32768 fits required_context 11000"),
    ("too-small", models(8192), Outcome.CONTEXT_TOO_SMALL,
     "max_model_len 8192 is below required_context 11000 + max_tokens 64 = 11064"),
    ("just-short-of-completion-room", models(11063), Outcome.CONTEXT_TOO_SMALL, "= 11064"),
    ("exactly-enough", models(11064), Outcome.OK, "fits"),
    ("not-reported", models(None), Outcome.CONTEXT_TOO_SMALL, "cannot be verified"),
    ("server-down", models(None, 502), Outcome.HTTP_502, "HTTP 502"),
]


@pytest.mark.parametrize(("handler", "outcome", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_passive_context_fit(handler: Any, outcome: Outcome, words: str) -> None:
    verdict = run(handler, {"required_context": 11000, COMPLETION_KEY: 64})
    assert verdict.outcome is outcome and words in verdict.message, verdict.message


def test_filler_is_about_the_required_size() -> None:
    text = context.filler(11000)
    assert len(text) == 44000 and text.startswith("Ignore the filler")


# -- one GET /v1/models for the models check and the context fit ---------------------------
def serve_pod(max_len: int | None, status: int, asked: list[str]) -> Any:
    """A vLLM-shaped pod: /v1/models with one card (or ``status``), /health, /metrics."""
    cards = models(max_len, status)

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/models":
            return cards(request)  # type: ignore[no-any-return]
        return httpx.Response(200, text="")

    return handler


def run_planned(max_len: int | None, status: int = 200,
                **overrides: Any) -> tuple[list[str], dict[str, ProbeResult]]:
    """One run of every job the app plans for a pod with required_context 11000: the paths
    the pod was asked, and each check's result."""
    target = endpoint(**{"checks": ("models", "health"), "extra": {"required_context": 11000},
                         **overrides})
    asked: list[str] = []

    async def go() -> list[ProbeResult]:
        async with answering(serve_pod(max_len, status, asked)) as client:
            prober = Prober(client, FleetState(role_of), PLUGINS.resolve, 8, 1 << 20)
            jobs = PLUGINS.plan(config_of(target))
            batches = await asyncio.gather(*(prober.run_job(job) for job in jobs))
            return [result for batch in batches for result in batch]

    return asked, {result.check: result for result in asyncio.run(go())}


@pytest.mark.parametrize(("max_len", "status", "models_outcome", "fit", "words"), [
    (32768, 200, Outcome.OK, Outcome.OK, "max_model_len 32768 fits required_context 11000"),
    (8192, 200, Outcome.OK, Outcome.CONTEXT_TOO_SMALL,
     "max_model_len 8192 is below required_context 11000 + max_tokens"),
    (None, 200, Outcome.OK, Outcome.CONTEXT_TOO_SMALL, "cannot be verified"),
    (None, 502, Outcome.HTTP_502, Outcome.HTTP_502, "HTTP 502"),
], ids=["fits", "too-small", "not-reported", "server-down"])
def test_the_context_fit_reads_the_models_checks_answer(
        max_len: int | None, status: int, models_outcome: Outcome, fit: Outcome,
        words: str) -> None:
    asked, results = run_planned(max_len, status)
    assert sorted(asked) == ["/health", "/v1/models"]  # one GET /v1/models for both
    assert results["models"].outcome is models_outcome
    assert results["models"].role is CheckRole.SERVED_MODEL
    context_fit = results["context"]
    assert context_fit.outcome is fit and words in context_fit.message, context_fit.message
    assert context_fit.role is CheckRole.AVAILABILITY
    assert context_fit.http_status == status


def test_the_context_fit_names_a_missing_model_like_its_own_request_does() -> None:
    asked, results = run_planned(32768, model="not-served")
    assert asked.count("/v1/models") == 1
    assert results["models"].outcome is Outcome.MODEL_MISSING
    assert results["context"].outcome is Outcome.MODEL_MISSING
    assert results["context"].message == "the expected model is not served"


def test_without_the_models_check_the_context_fit_asks_on_its_own() -> None:
    asked, results = run_planned(8192, checks=("health",))
    assert sorted(asked) == ["/health", "/v1/models"]
    assert results["context"].outcome is Outcome.CONTEXT_TOO_SMALL


@pytest.mark.parametrize("value", [None, 4096, 4096.0, 4096.7, True, "4096"])
def test_required_of_reads_what_the_settings_read(value: object) -> None:
    ep = endpoint(extra={} if value is None else {"required_context": value})
    assert ContextSettings.required_of(ep) == ContextSettings.of(ep).required_context
