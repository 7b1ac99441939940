"""The one road every request of runpod-probe takes (checks, control plane, discovery, round
trips, prompts): ``ProbeClient`` (httpx's API, plus ``fetch`` for a bounded GET), made by
``make_client``, over ``AiohttpTransport``, whose failures are httpx's exceptions through one
map (``probe.net.errors``). ``fetch`` takes a lean road beside it (``probe.net.lean``, with
``probe.net.answer`` and ``probe.net.dial``): a pool of its own, answers parsed by httptools,
the same rules of reuse and the same httpx exceptions."""

from probe.net.body import BodyTooLarge, read_capped
from probe.net.client import ProbeClient, make_client

__all__ = ["BodyTooLarge", "ProbeClient", "make_client", "read_capped"]
