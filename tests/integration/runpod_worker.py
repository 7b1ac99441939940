"""RunPod's own local worker API (``WorkerAPI`` from the ``runpod`` package) with a trivial
handler, served on 127.0.0.1 in a subprocess for the integration tier.

The app is mounted under ``/v2/local-worker`` so that a config whose ``api_base`` is this
server reaches it the way the daemon reaches ``https://api.runpod.ai/v2/{endpoint_id}``;
the routes and their handling are RunPod's, unchanged. Run as a script, it serves on the
listening socket whose file descriptor it is given.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ENDPOINT_ID = "local-worker"
START_TIMEOUT_S = 60.0


def handler(job: dict[str, Any]) -> dict[str, Any]:
    job_input = job["input"]
    if job_input.get("fail"):
        raise ValueError("boom requested")
    return {"echo": job_input}


@dataclass(frozen=True, slots=True)
class LocalWorker:
    api_base: str  # like https://api.runpod.ai/v2
    endpoint_id: str


def runpod_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("runpod") is not None


@contextmanager
def local_worker() -> Iterator[LocalWorker]:
    """Start the worker API on a free 127.0.0.1 port; stop it on exit."""
    import httpx

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = {**os.environ, "UVICORN_LOG_LEVEL": "warning"}
    for name in ("RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_WEBHOOK_PING", "RUNPOD_ENDPOINT_ID",
                 "RUNPOD_REALTIME_PORT"):  # never the platform mode
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, __file__, str(listener.fileno())],
                               pass_fds=(listener.fileno(),), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    listener.close()
    base = f"http://127.0.0.1:{port}/v2"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(f"the runpod worker API exited at start:\n{output[-2000:]}")
            try:
                if httpx.get(f"{base}/{ENDPOINT_ID}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the runpod worker API did not start in time")
            time.sleep(0.1)
        yield LocalWorker(base, ENDPOINT_ID)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def _serve(fd: int) -> None:
    import uvicorn
    from runpod.serverless.modules.rp_fastapi import WorkerAPI
    from starlette.applications import Starlette
    from starlette.routing import Mount

    api = WorkerAPI({"handler": handler})
    app = Starlette(routes=[Mount(f"/v2/{ENDPOINT_ID}", app=api.rp_app)])
    sock = socket.socket(fileno=fd)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
