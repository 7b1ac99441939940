"""The one road every request of runpod-probe takes (checks, control plane, discovery, round
trips, prompts): ``ProbeClient`` (httpx's API, plus ``fetch`` for a bounded GET), made by
``make_client``, over ``AiohttpTransport``, whose failures are httpx's exceptions through one
map (``probe.net.errors``)."""

from probe.net.body import BodyTooLarge, read_capped
from probe.net.client import ProbeClient, make_client

__all__ = ["BodyTooLarge", "ProbeClient", "make_client", "read_capped"]
