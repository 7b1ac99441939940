"""The simulated fleet: which pods, serverless endpoints and OpenAI providers exist, how
each behaves, and their live state.

Thread-safe: tests add targets and switch behaviours from their own thread while the
simulator's loop serves requests. Specs are immutable and swapped whole under a lock.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any

from probe.simulator.jobs import EndpointState
from probe.simulator.metrics import PodMetrics
from probe.simulator.openai_provider import PROVIDER_BEHAVIOURS
from probe.simulator.pods import POD_BEHAVIOURS
from probe.simulator.serverless_behaviours import SERVERLESS_BEHAVIOURS
from probe.simulator.specs import OpenAISpec, PodSpec, ServerlessSpec

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
API_MODES = ("ok", "restricted", "rate_limited", "api_error")  # RunPod's REST API (rest_api)


@dataclass(slots=True)
class PodEntry:
    spec: PodSpec
    metrics: PodMetrics


@dataclass(slots=True)
class EndpointEntry:
    spec: ServerlessSpec
    state: EndpointState


def _check(kind: str, target_id: str, behaviour: str, known: dict[str, Any]) -> None:
    if not _ID.fullmatch(target_id):
        raise ValueError(f"{kind} id {target_id!r}: use letters, digits, '.', '_' and '-'")
    if behaviour not in known:
        raise ValueError(
            f"{kind} {target_id!r}: unknown behaviour {behaviour!r}; known: {', '.join(known)}"
        )


class Fleet:
    """Pods, serverless endpoints and OpenAI providers, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[str, PodEntry] = {}
        self._serverless: dict[str, EndpointEntry] = {}
        self._openai: dict[str, OpenAISpec] = {}
        self._api_mode = "ok"

    # -- building -----------------------------------------------------------------------

    @classmethod
    def default(cls, provider_key: str | None = None) -> Fleet:
        """The demo fleet: one of each interesting failure next to healthy targets;
        ``provider_key``: the OpenAI provider's own key (None: the simulator's)."""
        fleet = cls()
        fleet.add_pod("qwen-healthy", PodSpec())
        fleet.add_pod(
            "deepseek-stopped", PodSpec("stopped", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
        )
        fleet.add_pod("vllm-down", PodSpec("server_down"))
        fleet.add_pod("slow-pod", PodSpec("slow", delay_s=30.0))
        fleet.add_pod("small-ctx", PodSpec("small_context", max_model_len=8192))
        fleet.add_pod("other-model", PodSpec("wrong_model"))
        fleet.add_pod("garbage-pod", PodSpec("garbage"))
        fleet.add_pod("endless-pod", PodSpec("endless_body"))
        fleet.add_pod("dead-engine", PodSpec("engine_dead"))
        fleet.add_pod("wrong-answer", PodSpec("wrong_answer"))
        fleet.add_serverless("vllm-healthy", ServerlessSpec())
        fleet.add_serverless("vllm-incident", ServerlessSpec("incident"))
        fleet.add_serverless("vllm-cold", ServerlessSpec("cold_start"))
        fleet.add_openai("fallback", OpenAISpec(api_key=provider_key))
        return fleet

    @classmethod
    def bench(cls, count: int) -> Fleet:
        """``count`` healthy pods, ``bench-0000`` onwards, for load tests."""
        fleet = cls()
        width = max(4, len(str(count - 1)))
        for i in range(count):
            fleet.add_pod(f"bench-{i:0{width}d}", PodSpec())
        return fleet

    @classmethod
    def named(cls, name: str) -> Fleet:
        """``default`` or ``bench:N``, as given on the command line."""
        if name == "default":
            return cls.default()
        kind, _, count = name.partition(":")
        if kind == "bench" and count.isdigit() and int(count) > 0:
            return cls.bench(int(count))
        raise ValueError(f"unknown fleet {name!r}: use 'default' or 'bench:N'")

    # -- reading (copies; safe from any thread) -------------------------------------------

    @property
    def pods(self) -> dict[str, PodSpec]:
        with self._lock:
            return {pod_id: entry.spec for pod_id, entry in self._pods.items()}

    @property
    def serverless(self) -> dict[str, ServerlessSpec]:
        with self._lock:
            return {ep_id: entry.spec for ep_id, entry in self._serverless.items()}

    @property
    def openai(self) -> dict[str, OpenAISpec]:
        with self._lock:
            return dict(self._openai)

    @property
    def api_mode(self) -> str:
        """How RunPod's REST API answers: ok, restricted, rate_limited or api_error."""
        return self._api_mode

    def pod_entry(self, pod_id: str) -> PodEntry | None:
        return self._pods.get(pod_id)

    def endpoint_entry(self, endpoint_id: str) -> EndpointEntry | None:
        return self._serverless.get(endpoint_id)

    def openai_spec(self, name: str) -> OpenAISpec | None:
        return self._openai.get(name)

    # -- changing -------------------------------------------------------------------------

    def add_pod(self, pod_id: str, spec: PodSpec | None = None) -> None:
        spec = spec or PodSpec()
        _check("pod", pod_id, spec.behaviour, POD_BEHAVIOURS)
        with self._lock:
            if pod_id in self._pods:
                raise ValueError(f"pod {pod_id!r} already exists")
            self._pods[pod_id] = PodEntry(spec, PodMetrics())

    def update_pod(self, pod_id: str, **changes: Any) -> None:
        """Change any ``PodSpec`` field at runtime; counters on /metrics are kept."""
        with self._lock:
            entry = self._pods[pod_id]
            spec = replace(entry.spec, **changes)
            _check("pod", pod_id, spec.behaviour, POD_BEHAVIOURS)
            entry.spec = spec

    def set_pod_behaviour(self, pod_id: str, behaviour: str) -> None:
        self.update_pod(pod_id, behaviour=behaviour)

    def remove_pod(self, pod_id: str) -> None:
        with self._lock:
            del self._pods[pod_id]

    def add_serverless(self, endpoint_id: str, spec: ServerlessSpec | None = None) -> None:
        spec = spec or ServerlessSpec()
        _check("serverless endpoint", endpoint_id, spec.behaviour, SERVERLESS_BEHAVIOURS)
        with self._lock:
            if endpoint_id in self._serverless:
                raise ValueError(f"serverless endpoint {endpoint_id!r} already exists")
            # An empty behaviour name makes the first request seed the state.
            self._serverless[endpoint_id] = EndpointEntry(spec, EndpointState(behaviour=""))

    def update_serverless(self, endpoint_id: str, **changes: Any) -> None:
        """Change any ``ServerlessSpec`` field; queued jobs are replanned on the next request."""
        with self._lock:
            entry = self._serverless[endpoint_id]
            spec = replace(entry.spec, **changes)
            _check("serverless endpoint", endpoint_id, spec.behaviour, SERVERLESS_BEHAVIOURS)
            entry.spec = spec

    def set_serverless_behaviour(self, endpoint_id: str, behaviour: str) -> None:
        self.update_serverless(endpoint_id, behaviour=behaviour)

    def remove_serverless(self, endpoint_id: str) -> None:
        with self._lock:
            del self._serverless[endpoint_id]

    def add_openai(self, name: str, spec: OpenAISpec | None = None) -> None:
        spec = spec or OpenAISpec()
        _check("openai provider", name, spec.behaviour, PROVIDER_BEHAVIOURS)
        with self._lock:
            if name in self._openai:
                raise ValueError(f"openai provider {name!r} already exists")
            self._openai[name] = spec

    def set_api_mode(self, mode: str) -> None:
        """``restricted``: the key lacks permission (403 on every list); ``rate_limited``:
        429 with Retry-After; ``api_error``: 500; ``ok``: lists the fleet."""
        if mode not in API_MODES:
            raise ValueError(f"unknown API mode {mode!r}; known: {', '.join(API_MODES)}")
        self._api_mode = mode

    def remove_openai(self, name: str) -> None:
        with self._lock:
            del self._openai[name]
