"""The peer's view: what the other probes of the fleet (``peers:``, an HA pair) say about each
endpoint, shown beside this probe's own verdict on the status page.

Each peer is asked on a slow clock of its own (``peers.every``), never on the request path:
``GET <peer>/status.json?view=verdicts``, the whole answer within ``peers.timeout`` and at most
``MAX_BYTES``. The page reads the last answer (one dict replaced whole, so the listener's
thread reads it without a lock). A peer that does not answer in time, refuses, answers
something that is not a verdict document or more than the cap is *unreachable*, with the
reason; an endpoint its answer does not name has no peer verdict. Neither is ever shown as
healthy. A peer that answers with this probe's own instance name is this probe (both
machines may list both URLs) and is left out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx

from probe.config.model import Peers
from probe.net.body import BodyTooLarge
from probe.state import EndpointView
from probe.verdict import State

log = logging.getLogger(__name__)

MAX_BYTES = 8 * 1024 * 1024  # 10,000 endpoints' verdicts are about 1 MiB
PATH = "/status.json?view=verdicts"
SCHEMA = 1
MAX_REASON = 200
STATES = frozenset(str(s) for s in State)
# (url, headers, limit) -> (status, body, headers): ProbeClient.fetch
Fetch = Callable[[str, Mapping[str, str], int], Awaitable[tuple[int, bytes, httpx.Headers]]]


class Unusable(Exception):
    """The peer's answer is not a verdict document."""


@dataclass(frozen=True, slots=True)
class PeerView:
    """One peer's last answer: its verdicts by endpoint, or why it is unreachable."""

    url: str
    asked_at: str
    instance: str | None = None
    reason: str | None = None  # None: it answered
    verdicts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return self.reason is None

    def summary(self) -> dict[str, Any]:
        return {"url": self.url, "instance": self.instance, "reachable": self.reachable,
                "reason": self.reason, "asked_at": self.asked_at,
                "endpoints": len(self.verdicts) if self.reachable else None}

    def of(self, endpoint: str) -> dict[str, Any]:
        """What this peer says about ``endpoint``: its state, or why there is none."""
        base = {"url": self.url, "instance": self.instance}
        if not self.reachable:
            return {**base, "state": None, "reason": f"peer unreachable: {self.reason}"}
        verdict = self.verdicts.get(endpoint)
        if verdict is None:
            return {**base, "state": None, "reason": "the peer has no verdict for it"}
        return {**base, "state": verdict["state"], "cause": verdict.get("cause"),
                "reason": None}


def verdicts_document(views: Mapping[str, EndpointView], instance: str,
                      now: datetime | None = None) -> dict[str, Any]:
    """What a peer is asked for: every endpoint's state and cause (O(fleet), asked on the
    peers' slow clock)."""
    out: dict[str, Any] = {}
    for name, view in views.items():
        if view.kind is None:
            continue
        cause = view.cause
        out[name] = {"state": str(view.state), "since": view.since,
                     "cause": None if cause is None or view.state is State.UP else
                     {"check": cause.check, "outcome": cause.outcome}}
    return {"schema": SCHEMA, "view": "verdicts", "instance": instance,
            "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "verdicts": out}


def parse_answer(body: bytes) -> tuple[str, dict[str, dict[str, Any]]]:
    """(the peer's instance, its verdicts) from its answer; ``Unusable`` otherwise. An
    endpoint whose entry is malformed is left out (no verdict), never guessed."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Unusable(f"its answer is not JSON ({_preview(body)})") from None
    if not isinstance(doc, dict) or doc.get("view") != "verdicts":
        raise Unusable("its answer is not a verdict document (no \"view\": \"verdicts\"; "
                       "is it a runpod-probe?)")
    if doc.get("schema") != SCHEMA:
        raise Unusable(f"its verdict document has schema {doc.get('schema')!r}, this probe "
                       f"reads {SCHEMA}")
    instance, verdicts = doc.get("instance"), doc.get("verdicts")
    if not isinstance(instance, str) or not instance or not isinstance(verdicts, dict):
        raise Unusable("its verdict document has no instance or no verdicts")
    kept: dict[str, dict[str, Any]] = {}
    for name, v in verdicts.items():
        if isinstance(v, dict) and v.get("state") in STATES:
            cause = v.get("cause")
            kept[name] = {"state": v["state"], "cause": _cause(cause)}
    return instance[:MAX_REASON], kept


def _cause(raw: Any) -> dict[str, str] | None:
    if isinstance(raw, dict) and isinstance(raw.get("check"), str) \
            and isinstance(raw.get("outcome"), str):
        return {"check": raw["check"][:MAX_REASON], "outcome": raw["outcome"][:MAX_REASON]}
    return None


def _preview(body: bytes) -> str:
    text = body[:60].decode("utf-8", "replace")
    return " ".join(text.split()) + ("…" if len(body) > 60 else "") if body else "empty"


class PeerWatch:
    """Asks every peer for its verdicts every ``peers.every``; ``views()`` is the last answer
    of each (any thread). ``peers`` and ``instance`` follow a config reload (``follow``);
    with no peers it asks nobody."""

    IDLE_S = 30.0  # how often a probe without peers looks again (after a reload)

    def __init__(self, peers: Peers | None, instance: str, fetch: Fetch,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.peers = peers
        self.instance = instance
        self.fetch = fetch
        self.clock = clock
        self._views: Mapping[str, PeerView] = MappingProxyType({})

    def follow(self, peers: Peers | None, instance: str) -> None:
        """A reloaded config's peers and name (asked from the next round on)."""
        self.peers, self.instance = peers, instance

    def views(self) -> list[PeerView] | None:
        """Each peer's last answer (asked or not yet), this probe itself left out; None
        without ``peers:``."""
        peers, last = self.peers, self._views
        if peers is None:
            return None
        return [last.get(url) or PeerView(url, "", reason="not asked yet")
                for url in peers.urls
                if last.get(url) is None or last[url].instance != self.instance]

    async def run(self) -> None:
        while True:
            await self.ask_all()
            await asyncio.sleep(self.peers.every_s if self.peers is not None else self.IDLE_S)

    async def ask_all(self) -> None:
        peers = self.peers
        if peers is None:
            self._views = MappingProxyType({})
            return
        answers = await asyncio.gather(*(self.ask(url, peers.timeout_s) for url in peers.urls))
        self._views = MappingProxyType({v.url: v for v in answers})

    async def ask(self, url: str, timeout: float) -> PeerView:
        """One peer's answer; whatever goes wrong is the reason it is unreachable."""
        at = self.clock().isoformat(timespec="seconds")
        try:
            status, body, _ = await asyncio.wait_for(
                self.fetch(url + PATH, {"Accept": "application/json"}, MAX_BYTES), timeout)
            if status != 200:
                raise Unusable(f"it answered HTTP {status}")
            instance, verdicts = parse_answer(body)
        except TimeoutError:
            reason = f"no whole answer within {timeout:g}s"
        except BodyTooLarge:
            reason = f"its answer is larger than {MAX_BYTES // (1024 * 1024)} MiB"
        except Unusable as exc:
            reason = str(exc)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            return PeerView(url, at, instance, None, MappingProxyType(verdicts))
        log.debug("peer %s unreachable: %s", url, reason)
        return PeerView(url, at, reason=reason[:MAX_REASON])


def peer_columns(views: list[PeerView] | None,
                 names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each named endpoint's peer verdicts (only the page's endpoints: O(page))."""
    if views is None:
        return {}
    return {name: [v.of(name) for v in views] for name in names}
