"""The core checks (``models``) and how a check name is resolved.

Every check is ``async def check(endpoint, client, ctx) -> Observation`` (``probe.check``); the
features' own checks live in their packages (serverless queue and round trip, prompts and
context fit, vLLM engine health and load) and reach the runner through their ``Feature``.
"""
