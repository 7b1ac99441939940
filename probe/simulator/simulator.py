"""``Simulator``: a simulated RunPod fleet served over real HTTP on 127.0.0.1.

Start it, point the daemon at ``proxy_template`` / ``api_base`` / ``openai_base(name)``,
and drive behaviours through ``fleet`` while it runs. Usable as a context manager.
"""

from __future__ import annotations

from types import TracebackType

from probe.simulator.fleet import Fleet
from probe.simulator.messages import SeenRequest
from probe.simulator.router import Router
from probe.simulator.server import HttpServer


class Simulator:
    def __init__(
        self,
        fleet: Fleet | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        keep_requests: int = 10_000,
    ) -> None:
        """``api_key``: when given (RunPod's account key), every serverless route, RunPod's REST
        API and the OpenAI providers require ``Authorization: Bearer <api_key>``; a pod
        requires only its own ``PodSpec.api_key`` (vLLM's --api-key), if any.
        ``keep_requests`` bounds ``requests_seen`` (the most recent ones are kept)."""
        self.fleet = fleet if fleet is not None else Fleet.default()
        self.host = host
        self._router = Router(self.fleet, api_key, keep_requests)
        self._server = HttpServer(self._router, host, port, early=self._router.answers_early)
        self._started = False

    def __repr__(self) -> str:  # never shows the key
        state = self.base_url if self._started else "not started"
        return f"<Simulator {state}>"

    def start(self) -> Simulator:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._server.stop()
        self._started = False

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        if not self._started:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def proxy_template(self) -> str:
        """Formatted by the daemon with ``pod_id`` and ``port``."""
        return self.base_url + "/proxy/{pod_id}-{port}"

    @property
    def api_base(self) -> str:
        """RunPod's serverless API base (``https://api.runpod.ai/v2`` in production)."""
        return self.base_url + "/v2"

    @property
    def rest_api_base(self) -> str:
        """RunPod's REST API v2 (``https://api.runpod.io/v2`` in production)."""
        return self.base_url + "/api/v2"

    def pod_url(self, pod_id: str) -> str:
        return self.proxy_template.format(pod_id=pod_id, port=self.fleet.pods[pod_id].port)

    def openai_base(self, name: str) -> str:
        """Base URL of an OpenAI provider, ending in ``/v1`` as OpenAI clients expect."""
        return f"{self.base_url}/openai/{name}/v1"

    @property
    def requests_seen(self) -> list[SeenRequest]:
        """(method, path with query, headers without Authorization, SHA-256 of the
        Authorization sent), oldest first."""
        return self._router.requests_seen

    @property
    def request_count(self) -> int:
        """Every request ever served, including those no longer in ``requests_seen``."""
        return self._router.request_count

    def clear_requests(self) -> None:
        self._router.clear_requests()
