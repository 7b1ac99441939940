"""What the simulated fleet is made of: one frozen spec per pod, serverless endpoint and
OpenAI-compatible provider. Behaviour names are checked against the registries by ``Fleet``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"


@dataclass(frozen=True, slots=True)
class PodSpec:
    """A RunPod pod running vLLM, reached through ``/proxy/{pod_id}-{port}``."""

    behaviour: str = "healthy"
    model: str = DEFAULT_MODEL  # the served model id
    max_model_len: int = 32768
    port: int = 8000  # the one exposed HTTP port; any other port answers like an unexposed one
    delay_s: float = 30.0  # `slow`: time before every answer
    ttft_delay_s: float = 1.0  # `slow_stream`: time to the first content token
    name: str | None = None  # the pod's name in RunPod's REST API (default: its id)
    # vLLM's own --api-key: when set, /v1/* requires it. RunPod's proxy asks for no key, so
    # a pod never needs (and must never receive) the RunPod account key.
    api_key: str | None = None
    # `echo_auth_cut`: how many characters of the caller's key come before the 120th byte
    # of every answer (where a probe's preview of a body ends)
    cut_at: int = 0
    # the hardware RunPod's API reports: gpu.id and dataCenterId
    gpu_type: str = "NVIDIA RTX A4500"
    data_center: str = "EU-RO-1"


@dataclass(frozen=True, slots=True)
class ServerlessSpec:
    """A RunPod serverless (queue) endpoint running a vLLM worker, under ``/v2/{endpoint_id}``."""

    behaviour: str = "healthy"
    model: str = DEFAULT_MODEL  # served on the /openai/v1 route
    max_model_len: int = 32768
    queue_delay_s: float = 0.05  # a warm worker picks a job up after this
    execution_s: float = 0.1  # and runs it this long
    cold_start_s: float = 2.0  # `cold_start`: worker boot before the first job runs
    complete_after_s: float = 1.5  # `slow_queue`: submit to completion
    idle_timeout_s: float | None = None  # `cold_start`: go cold again after this idle; None: never
    name: str | None = None  # the endpoint's name in RunPod's REST API (default: its id)
    type: str = "QUEUE"  # REST API type: QUEUE or LOAD_BALANCER
    # REST API dataCenterIds: where its workers may run (RunPod's default: several)
    data_centers: tuple[str, ...] = ("EU-RO-1", "US-TX-3")


@dataclass(frozen=True, slots=True)
class OpenAISpec:
    """A commercial-style OpenAI-compatible provider under ``/openai/{name}``."""

    behaviour: str = "healthy"
    model: str = "gpt-4o-mini"
    context_window: int = 128000  # enforced, but not advertised on the model card
    # the provider's own key (a provider never gets RunPod's account key); None: the
    # simulator's api_key
    api_key: str | None = None
