"""Where features plug their own config into the loader, so ``load.py`` stays the spine.

- ``SECTIONS``: top-level keys (e.g. ``prompts:``). The parser receives the raw value, its
  path and the problem list, and returns a value kept in ``Config.sections[key]``.
- ``ENDPOINT_KEYS``: extra per-endpoint keys (e.g. ``required_context``). The parser gets the
  endpoint's ``Fields`` and returns a value kept in ``Endpoint.extra[key]`` (None: absent).
- ``ENV_SECTIONS``: like ``SECTIONS``, for a section whose rules also come from the scope's
  environment variables (e.g. ``prompts:`` bounded by TOKENS_MIN/TOKENS_MAX/MAX_TOKENS); the
  parser also receives the environment the config is loaded with.
- ``VALIDATORS``: cross-checks over the built config (e.g. a prompt names an unknown
  endpoint); they add problems, and any problem fails the load.
- ``ENV_VALIDATORS``: like ``VALIDATORS``, for cross-checks that also need the environment
  (e.g. discovery needs ``runpod.api_key_env`` set even when no endpoint is configured).
- ``ENDPOINT_SOURCES``: top-level sections that supply endpoints at run time (``discovery:``);
  when one is present, ``endpoints:`` may be empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from probe.config.fields import Fields, Problems
from probe.config.model import Config

SectionParser = Callable[[Any, str, Problems], Any]
EnvSectionParser = Callable[[Any, str, Problems, Mapping[str, str]], Any]
EndpointKeyParser = Callable[[Fields], Any]
Validator = Callable[[Config, Problems], None]
EnvValidator = Callable[[Config, Problems, Mapping[str, str]], None]

SECTIONS: dict[str, SectionParser] = {}
ENV_SECTIONS: dict[str, EnvSectionParser] = {}
ENDPOINT_KEYS: dict[str, EndpointKeyParser] = {}
VALIDATORS: list[Validator] = []
ENV_VALIDATORS: list[EnvValidator] = []
ENDPOINT_SOURCES: set[str] = set()


def register_features() -> None:
    """Import every feature module that registers config (one line per feature)."""
    import probe.discovery.wiring  # noqa: F401 - endpoints listed by RunPod's REST API
    import probe.engine.feature  # noqa: F401 - vLLM engine liveness/load: stuck_after, metrics
    import probe.ledger.plugin  # noqa: F401 - ledger, learning
    import probe.prompts.feature  # noqa: F401 - governed prompts, context fit, token budget
    from probe.serverless import wiring  # noqa: F401 - serverless queue, round trip
