"""The long-running daemon: wires config → scheduler → prober → state/store/metrics.

SIGTERM/SIGINT stop it cleanly (in-flight checks finish, queued results are written);
SIGHUP reloads the config, and an invalid new config is refused while the old one runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from probe.config import Config, ConfigError, load_config
from probe.metrics import ProbeCollector, make_registry, serve
from probe.prober import Prober, make_client
from probe.scheduler import Job, ProbeScheduler, plan
from probe.secrets import Redactor, install_log_redaction
from probe.state import FleetState
from probe.store import ResultStore

log = logging.getLogger(__name__)

# Features that live beside the probing loop (the ledger, LEARNING.md appends) start here:
# a hook gets the running daemon (its prober is ready) and may return a closer that runs
# at shutdown, after in-flight checks finished. A hook may be async: the first probes wait
# for it (discovery lists RunPod's fleet first, so the first sweep includes what it found).
Closer = Callable[[], None]
StartupHook = Callable[["Daemon"], Closer | None | Awaitable[Closer | None]]
STARTUP_HOOKS: list[StartupHook] = []
# Features that add endpoints to the file's config at run time (discovery): applied, in
# order, to every config the daemon runs (at start, on reload, when they ask for it).
Expander = Callable[[Config], Config]


class Daemon:
    def __init__(self, config: Config, env: Mapping[str, str] | None = None) -> None:
        self.config = config  # what runs: the file's config plus what expanders add
        self.file_config = config  # as last loaded from the file
        self.expanders: list[Expander] = []
        self.env = env
        self.redactor = Redactor(config.secret_env_names(), env)
        self.state = FleetState(config)
        self.store: ResultStore | None = None
        self.collector = ProbeCollector(self.state)
        self.registry = make_registry(self.collector)
        self.metrics_server: Any = None
        self.prober: Prober | None = None
        self.scheduler: ProbeScheduler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ready = asyncio.Event()

    @property
    def metrics_url(self) -> str:
        host, port = self.config.metrics.host, self.metrics_port
        return f"http://{host}:{port}/metrics"

    @property
    def metrics_port(self) -> int:
        if self.metrics_server is not None:
            return int(self.metrics_server.server_port)
        return self.config.metrics.port

    async def run(self, stop: asyncio.Event, install_signals: bool = True) -> None:
        install_log_redaction(self.redactor)
        self.store = ResultStore(self.config.storage.path, redact=lambda text: self.redactor(text))
        self.collector.store = self.store
        self.metrics_server = serve(self.registry, self.config.metrics.host,
                                    self.config.metrics.port)
        self.state.daemon.reload_success_ts = time.time()
        log.info("metrics on %s, results in %s, %d endpoints", self.metrics_url,
                 self.config.storage.path, len(self.config.endpoints))
        try:
            async with make_client(self.config.scheduler.max_concurrent) as client:
                self.prober = Prober(client, self.state, self.config.scheduler.max_concurrent,
                                     self.config.scheduler.max_body_bytes, self.store, self.env)
                closers = [c for hook in STARTUP_HOOKS if (c := await _start(hook, self))]
                self.scheduler = ProbeScheduler(self._spawn, on_skip=self.state.skipped_run)
                self.scheduler.set_jobs(plan(self.config), self.config.scheduler.spread)
                self.scheduler.start()
                if install_signals:
                    self._install_signals(stop)
                self.ready.set()
                await stop.wait()
                await self.scheduler.shutdown()
                log.info("stopping: waiting for %d checks in flight", len(self._tasks))
                await self._drain()
                for close in closers:
                    close()
        finally:
            self.store.close()
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            log.info("stopped")

    async def _spawn(self, job: Job) -> None:
        """Run a job in a task of our own: APScheduler cancels its futures at shutdown, and a
        check in flight must finish and be written instead."""
        assert self.prober is not None and self.scheduler is not None
        task = asyncio.create_task(self.prober.run_job(job, self.scheduler.scheduled_at(job.id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Only the scheduler's shutdown cancels us: the check goes on and ``_drain``
            # waits for it, so there is nothing to propagate.
            return

    async def _drain(self) -> None:
        if not self._tasks:
            return
        # A job runs its checks one after another (a pod has three): the slowest job bounds it.
        grace = max(((e.timeout_s + e.retry_delay_s) * e.tries * len(e.checks)
                     for e in self.config.endpoints), default=10.0) + 1.0
        done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()

    def _install_signals(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> bool:
        """Re-read the config file; keep running the old config if the new one is invalid."""
        self.state.daemon.reloads_total += 1
        if self.file_config.source is None:
            return False
        try:
            new = load_config(self.file_config.source, self.env)
        except ConfigError as exc:
            self.state.daemon.reload_ok = False
            for line in exc.problems:
                log.error("config reload refused: %s", self.redactor(line))
            return False
        if (new.storage, new.metrics) != (self.config.storage, self.config.metrics):
            log.warning("storage/metrics changes take effect after a restart")
        self.file_config = new
        self.apply(new)
        self.state.daemon.reload_ok = True
        self.state.daemon.reload_success_ts = time.time()
        log.info("config reloaded: %d endpoints", len(self.config.endpoints))
        return True

    def apply(self, config: Config) -> bool:
        """Run ``config`` plus what the expanders add: state declared, and scheduler jobs
        replaced only where they changed. False when nothing changed (the running config
        object is kept, so observers that watch it see no change)."""
        for expand in self.expanders:
            config = expand(config)
        if config == self.config:
            return False
        self.config = config
        self.redactor = Redactor(config.secret_env_names(), self.env)
        install_log_redaction(self.redactor)
        self.state.configure(config)
        if self.scheduler is not None:
            self.scheduler.set_jobs(plan(config), config.scheduler.spread)
        return True


async def _start(hook: StartupHook, daemon: Daemon) -> Closer | None:
    started = hook(daemon)
    if inspect.isawaitable(started):
        return await started
    return started
