"""A simulated RunPod fleet on 127.0.0.1: vLLM pods behind the HTTP proxy, serverless
endpoints behind the queue API, and a generic OpenAI-compatible provider, each healthy or
broken in a named way. Used by end-to-end tests and ``runpod-probe demo``.

Standard library only.
"""

from probe.simulator.fleet import Fleet
from probe.simulator.messages import SeenRequest
from probe.simulator.openai_provider import PROVIDER_BEHAVIOURS
from probe.simulator.pods import POD_BEHAVIOURS
from probe.simulator.serverless_behaviours import SERVERLESS_BEHAVIOURS
from probe.simulator.simulator import Simulator
from probe.simulator.specs import OpenAISpec, PodSpec, ServerlessSpec

__all__ = [
    "POD_BEHAVIOURS",
    "PROVIDER_BEHAVIOURS",
    "SERVERLESS_BEHAVIOURS",
    "Fleet",
    "OpenAISpec",
    "PodSpec",
    "SeenRequest",
    "ServerlessSpec",
    "Simulator",
]
