"""RunPod's account key goes to RunPod only: serverless endpoints, discovery, and a serverless
endpoint's own OpenAI route under ``runpod.api_base``. Whoever runs a pod's container, or
another provider, would read it, so a config that would send it anywhere else is refused.

The variable is compared by name and by value: a second variable holding the same key is the
same key."""

from __future__ import annotations

import re
from collections.abc import Mapping

from probe.config.model import RunpodSettings

_ONLY = "RunPod's account key goes only to RunPod"


def account_key_use(key_env: str | None, runpod: RunpodSettings,
                    env: Mapping[str, str]) -> str | None:
    """How ``key_env`` is the account key ("is ..." / "holds the same key as ..."), or None
    when it is another key (or none)."""
    account = runpod.api_key_env
    if not key_env:
        return None
    if key_env == account:
        return f"{key_env} is runpod.api_key_env"
    value = env.get(key_env, "")
    if value and value == env.get(account, ""):
        return f"{key_env} holds the same key as {account} (runpod.api_key_env)"
    return None


def pods_key_problem(runpod: RunpodSettings, env: Mapping[str, str]) -> str | None:
    """The one-line refusal of a ``runpod.pod_api_key_env`` that is the account key."""
    use = account_key_use(runpod.pod_api_key_env, runpod, env)
    if use is None:
        return None
    return (f"{use}: {_ONLY}, never to a pod's server; name the pods' own vLLM --api-key "
            "variable")


def endpoint_key_problem(kind: str, key_env: str | None, openai_base: str,
                         runpod: RunpodSettings, env: Mapping[str, str]) -> str | None:
    """The one-line refusal of an endpoint's ``api_key_env`` that would send the account key
    to a pod or a provider other than RunPod's own OpenAI route of a serverless endpoint."""
    if kind == "serverless" or is_runpod_openai_route(openai_base, runpod):
        return None
    use = account_key_use(key_env, runpod, env)
    if use is None:
        return None
    where = "a pod's server" if kind == "pod" else "this provider"
    return (f"{use}: {_ONLY} (serverless endpoints, discovery, "
            f"{runpod.api_base}/ENDPOINT_ID/openai/v1), never to {where}; name its own key, "
            "or null for none")


def is_runpod_openai_route(openai_base: str, runpod: RunpodSettings) -> bool:
    """``openai_base`` is RunPod's OpenAI route of a serverless endpoint:
    ``{runpod.api_base}/{endpoint_id}/openai/v1``."""
    return re.fullmatch(re.escape(runpod.api_base) + r"/[A-Za-z0-9_-]+/openai/v1",
                        openai_base) is not None
