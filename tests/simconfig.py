"""Write configs that point the daemon at a running simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def header(sim: Any, state: Path, interval: str = "1s", timeout: str = "800ms",
           tries: int = 1) -> str:
    return (
        f'runpod: {{api_key_env: RUNPOD_API_KEY, api_base: "{sim.api_base}", '
        f'proxy_url: "{sim.proxy_template}"}}\n'
        f"defaults: {{interval: {interval}, timeout: {timeout}, tries: {tries}, "
        "retry_delay: 50ms}\n"
        f'storage: {{path: "{state / "probe.db"}"}}\n'
        'metrics: {listen: "127.0.0.1:0"}\n'
        "scheduler: {spread: false}\n"
    )


def pods(*rows: str) -> str:
    """Each row: 'name pod_id [extra yaml flow keys]'."""
    out = ["endpoints:"]
    for row in rows:
        name, pod_id, *extra = row.split(" ", 2)
        more = f", {extra[0]}" if extra else ""
        out.append(f"  - {{name: {name}, kind: pod, pod_id: {pod_id}{more}}}")
    return "\n".join(out) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
