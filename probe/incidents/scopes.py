"""Which groups an endpoint belongs to, from facts the config already has: all pods behind
one RunPod proxy host, all serverless endpoints behind one API base, each provider's base
URL, and the whole fleet."""

from __future__ import annotations

from urllib.parse import urlsplit

from probe.config.model import Endpoint

FLEET = "fleet"


def _netloc(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return (parts.netloc.rpartition("@")[2] or url).lower()


def proxy_host(endpoint: Endpoint) -> str:
    """The proxy's host: a pod's own label (``<pod_id>-<port>.``) taken off the front."""
    netloc = _netloc(endpoint.root_url)
    first, dot, rest = netloc.partition(".")
    if dot and endpoint.pod_id and endpoint.pod_id.lower() in first:
        return rest
    return netloc


def scope_of(endpoint: Endpoint) -> str:
    """The narrowest group of ``endpoint`` (every endpoint is also in ``fleet``)."""
    if endpoint.kind == "pod":
        return f"proxy:{proxy_host(endpoint)}"
    if endpoint.kind == "serverless":
        return f"serverless:{_netloc(endpoint.root_url)}"
    return f"provider:{_netloc(endpoint.openai_base)}"
