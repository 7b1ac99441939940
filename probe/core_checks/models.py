"""``GET /v1/models``: is the server up, which model does it serve, how long is its context?

vLLM keeps answering this route while its engine is dead, so it is not a liveness
signal on its own; it is the source of truth for the served model id and
``max_model_len`` (present on vLLM >= 0.5 model cards, absent on most providers).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from probe.check import SERVED_MODEL, CheckContext
from probe.config.model import Endpoint
from probe.http import BadBody, describe_status, get, parse_json_object, status_outcome
from probe.net import ProbeClient
from probe.outcome import Observation, Outcome


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    url = f"{endpoint.openai_base}/models"
    status, body, _ = await get(client, url, ctx.headers(endpoint), ctx.max_body_bytes)
    failed = status_outcome(status)
    if failed is not None:
        return Observation(failed, api_status_note(endpoint)
                           + describe_status(status, body, endpoint.kind), status)
    try:
        cards = model_cards(parse_json_object(body))
    except BadBody as exc:
        return Observation(Outcome.BAD_RESPONSE, str(exc), status)
    return judge(endpoint, cards, status, ctx)


def api_status_note(endpoint: Endpoint) -> str:
    """Why a pod may not answer, per RunPod's API (set by discovery): "pod EXITED ...: "."""
    status = endpoint.runpod_status
    if endpoint.kind != "pod" or status in (None, "RUNNING"):
        return ""
    return f"pod {status} per RunPod API: "


def model_cards(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The model cards of a /v1/models answer, each with a string ``id``. The ids are
    interned: the latest answer of every pod is kept (its details, the drift memory, the
    pick the prompts reuse), and a fleet serves a few models, so ten thousand pods hold a
    few copies of each id instead of ten thousand (~75 bytes each for a 24-character id)."""
    data = document.get("data")
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise BadBody('expected {"data": [model cards]}')
    for card in data:
        model_id = card.get("id")
        if not isinstance(model_id, str):
            raise BadBody("a model card has no string id")
        card["id"] = sys.intern(model_id)
    return data


def judge(endpoint: Endpoint, cards: list[dict[str, Any]], status: int,
          ctx: CheckContext) -> Observation:
    served = [card["id"] for card in cards]
    card = pick_card(cards, endpoint.model)
    max_len = _max_len(card) if card else None
    details: dict[str, Any] = {"served_models": served, "max_model_len": max_len,
                               "model": card["id"] if card else None}
    details.update(_drift(ctx, card or (cards[0] if cards else None)))
    if card is not None:
        ctx.shared[SERVED_MODEL] = (card["id"], time.time())
    else:
        ctx.shared.pop(SERVED_MODEL, None)
    if not served:
        return Observation(Outcome.MODEL_MISSING, "the server lists no models", status, details)
    if card is None:
        return Observation(Outcome.MODEL_MISSING,
                           f'expected model "{endpoint.model}" is not served (serving: '
                           f'{", ".join(served)})', status, details)
    if endpoint.min_context is not None:
        if max_len is None:
            return Observation(Outcome.CONTEXT_TOO_SMALL,
                               f"server does not report max_model_len, so min_context "
                               f"{endpoint.min_context} cannot be verified", status, details)
        if max_len < endpoint.min_context:
            return Observation(Outcome.CONTEXT_TOO_SMALL,
                               f"max_model_len {max_len} is below min_context "
                               f"{endpoint.min_context}", status, details)
    message = f"serving {card['id']}" + (f" (max_model_len {max_len})" if max_len else "")
    return Observation(Outcome.OK, message, status, details)


def pick_card(cards: list[dict[str, Any]], expected: str | None) -> dict[str, Any] | None:
    if expected is None:
        return cards[0] if cards else None
    for card in cards:
        if card["id"] == expected:
            return card
    return None


def _max_len(card: dict[str, Any]) -> int | None:
    max_len = card.get("max_model_len")
    return max_len if isinstance(max_len, int) and not isinstance(max_len, bool) else None


def _drift(ctx: CheckContext, card: dict[str, Any] | None) -> dict[str, Any]:
    """Record the previous served model / context length when either changed.

    ``card`` is the expected model's card, or the first served one when the expected model
    is gone (a redeploy with another model is drift too, not only a missing model). What is
    remembered is a (model, max_model_len) pair, kept per pod (a tuple: 56 bytes, against
    184 for the dict it was)."""
    if card is None:  # nothing served: keep the last known values to compare against
        return {}
    now = (card["id"], _max_len(card))
    before = ctx.memory.get("models")
    ctx.memory["models"] = now
    if not before:
        return {}
    drift: dict[str, Any] = {}
    if before[0] != now[0]:
        drift["model_changed"] = {"old": before[0], "new": now[0]}
    if before[1] is not None and before[1] != now[1]:
        drift["max_model_len_changed"] = {"old": before[1], "new": now[1]}
    return drift
