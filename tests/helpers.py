"""Small builders shared by unit tests."""

from __future__ import annotations

from typing import Any

from probe.config.model import Endpoint


def endpoint(**overrides: Any) -> Endpoint:
    values: dict[str, Any] = dict(
        name="pod-a", kind="pod", openai_base="http://pod.test/v1", root_url="http://pod.test",
        interval_s=30.0, timeout_s=2.0, tries=1, retry_delay_s=0.0, checks=("models",),
        api_key_env=None, model=None, min_context=None, pod_id="a", port=8000,
    )
    values.update(overrides)
    return Endpoint(**values)
