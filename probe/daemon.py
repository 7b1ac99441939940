"""The long-running daemon: config → plan → scheduler → prober → state/store/metrics, plus
what the features start beside it (ledger, discovery, prompt and serverless metrics).

The daemon runs with the ``Plugins`` it is given (the composition root hands it every
feature); it plans once per applied config and hands the same jobs to state, scheduler and
features. SIGTERM/SIGINT stop it cleanly (no check starts after the signal; checks in flight
finish within their own bound; queued results are written); SIGHUP reloads the config, and
an invalid new config is refused while the old one runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from probe.build import build_name
from probe.config import Config, ConfigError, load_config
from probe.config.shard import owned
from probe.engine import probing
from probe.exposition.text import make_wsgi_app
from probe.features import (
    Attachment,
    Changed,
    Expander,
    Plugins,
    Route,
    StartupHook,
    StatusPart,
)
from probe.job import Job, concurrency, open_connections
from probe.listener import serve, with_pages
from probe.metrics import Guarded, ProbeCollector, make_registry
from probe.net import ProbeClient
from probe.notify import Notifier
from probe.outcome import ProbeResult
from probe.prober import Prober
from probe.process import (
    FD_HEADROOM,
    Tuning,
    collect_garbage,
    heap_trimmer,
    limit_heap_arenas,
    raise_open_files_limit,
    trim_heap,
)
from probe.scheduler import ProbeScheduler
from probe.secrets import Redactor, install_log_redaction
from probe.state import EndpointView, FleetState, Row
from probe.store import ResultStore
from probe.verdict import EndpointVerdict, State, Transition
from probe.windows import WindowClock

log = logging.getLogger(__name__)
DRAIN_SLACK_S = 1.0  # on top of the slowest in-flight check's own bound
# The longest a stop waits for checks in flight, whatever their bounds (the unit's
# TimeoutStopSec is above it): what is still running then is cancelled and logged.
STOP_LIMIT_S = 90.0
STATUS_EVERY_S = 30.0  # the status line's refresh without a watchdog


class StartupError(Exception):
    """The daemon cannot start where the config says (a database it cannot open, an address
    it cannot listen on): a configuration or environment problem a restart cannot fix. The
    message is one line naming the path or address and the cause."""


def open_store(config: Config, redact: Callable[[str], str]) -> ResultStore:
    path = config.storage.path
    try:
        return ResultStore(path, redact=redact, retention_s=config.storage.retention_s)
    except FileExistsError as exc:  # mkdir met a file where a directory should be
        raise StartupError(f"storage.path {path}: cannot open the database: {exc.filename} "
                           "is a file, not a directory") from None
    except Exception as exc:  # noqa: BLE001 - every cause is reported as one line
        raise StartupError(f"storage.path {path}: cannot open the database: "
                           f"{_reason(exc)}") from None


def listen(registry: Any, config: Config, pages: Mapping[str, Route]) -> Any:
    """/metrics, and the pages features add (read at each request)."""
    host, port = config.metrics.host, config.metrics.port
    try:
        # /metrics is collected in the event loop's thread between probes (probe.exposition.text)
        metrics = make_wsgi_app(registry, asyncio.get_running_loop(),
                                offer_protobuf=config.metrics.native_histograms)
        return serve(with_pages(metrics, pages), host, port)
    except OSError as exc:
        raise StartupError(f"metrics.listen {host}:{port}: cannot listen: "
                           f"{_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return exc.strerror + where
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Daemon:
    """Also the ``Host`` that feature start-up hooks receive."""

    def __init__(self, config: Config, plugins: Plugins,
                 env: Mapping[str, str] | None = None) -> None:
        self.plugins = plugins
        # what runs: the file's config plus what expanders add, held to this daemon's shard
        self.config = owned(config)
        self.file_config = config  # as last loaded from the file
        self.expanders: list[Expander] = []
        self.env = env
        self.redactor = Redactor(config.secret_env_names(), env)
        self.jobs: Sequence[Job] = plugins.plan(self.config)
        self.state = FleetState(plugins.role_of, native=config.metrics.native_histograms)
        self.state.configure(self.config, self.jobs)
        self.store: ResultStore | None = None
        self.collector = ProbeCollector(self.state, per_check=config.metrics.per_check,
                                        protobuf=config.metrics.native_histograms)
        self.registry = make_registry(self.collector)
        self.metrics_server: Any = None
        self.prober: Prober | None = None
        self.scheduler: ProbeScheduler | None = None
        self._attachments: list[Attachment] = []
        self._tasks: dict[asyncio.Task[Any], Job] = {}
        self._reloading: asyncio.Task[bool] | None = None
        self._files_wanted = 0  # the open files the largest plan so far can hold
        self.notifier = Notifier(env)
        self.ready = asyncio.Event()
        self.changed: list[Changed] = []
        self.routes: dict[str, Route] = {}
        self._status_parts: dict[str, StatusPart] = {}
        self.clock = WindowClock(plugins.windows, self.state, self._changed)

    @property
    def metrics_url(self) -> str:
        host, port = self.config.metrics.host, self.metrics_port
        return f"http://{host}:{port}/metrics"

    @property
    def metrics_port(self) -> int:
        if self.metrics_server is not None:
            return int(self.metrics_server.server_port)
        return self.config.metrics.port

    # -- what start-up hooks use (the Host protocol) -------------------------------------
    @property
    def client(self) -> ProbeClient:
        assert self.prober is not None, "the client exists once the daemon runs"
        return self.prober.client

    @property
    def standing(self) -> Mapping[str, str]:
        return self.plugins.standing

    def redact(self, text: str) -> str:
        return self.redactor(text)

    def _changed(self, endpoint: str, transitions: list[Transition]) -> None:
        """A maintenance window began or ended: every listener hears it, like a result."""
        for t in transitions:
            log.debug("%s: %s", endpoint, t.event)
        verdict = self.state.verdict(endpoint)
        for listener in self.changed:
            try:
                listener(endpoint, transitions, verdict)
            except Exception:  # noqa: BLE001
                log.exception("verdict listener failed")

    def verdict(self, endpoint: str) -> EndpointVerdict | None:
        return self.state.verdict(endpoint)

    def endpoint_views(self) -> Mapping[str, EndpointView]:
        return self.state.views()

    def endpoint_rows(self, names: Iterable[str]) -> Mapping[str, Row]:
        return self.state.rows(names)

    def status_parts(self) -> Mapping[str, StatusPart]:
        return self._status_parts

    def restore(self, saved: dict[str, EndpointVerdict]) -> None:
        self.state.restore(saved)

    def publish(self, result: ProbeResult) -> ProbeResult:
        assert self.prober is not None
        return self.prober.publish(result)

    def declare_standing(self, endpoint: str, check: str) -> None:
        self.state.declare_standing(endpoint, check)

    def add_expander(self, expander: Expander) -> None:
        self.expanders.append(expander)

    def announce(self, subject: str, transitions: list[Transition]) -> None:
        """Transitions of no endpoint (a fleet incident): every verdict listener hears them."""
        self._changed(subject, transitions)

    # -- running -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, install_signals: bool = True) -> None:
        if install_signals:  # first: a signal during start-up must not kill the process
            self._install_signals(stop)
        install_log_redaction(self.redactor)
        limit_heap_arenas()  # before the daemon's threads (the server's, the writers')
        self._open_files()
        # A schema upgrade of a large database may take minutes (dropping an index: about
        # 1.3 s per million results): systemd is asked for more time while it runs
        with self.notifier.extending("opening the database (its schema may be upgraded)"):
            self.store = open_store(self.config, lambda text: self.redactor(text))
        try:
            self.metrics_server = listen(self.registry, self.config, self.routes)
        except StartupError:
            self.store.close()
            raise
        self.collector.store = self.store
        self.state.daemon.reload_success_ts = time.time()
        # the first line once started names the build (a failed start says only why)
        log.info("runpod-probe %s: metrics on %s, results in %s, %d endpoints", build_name(),
                 self.metrics_url, self.config.storage.path, len(self.config.endpoints))
        tuning = Tuning()  # the GIL's switch interval; garbage collected on a clock
        try:
            async with probing(self.config, self.plugins, self.store, self.env, self.state,
                               self.redactor, self.jobs) as prober:
                self.prober = prober
                for hook in self.plugins.startup:
                    attachment = await _start(hook, self)
                    if attachment is not None:
                        self._attach(attachment)
                self._announce_plan()  # hooks attached after the first plan see it too
                await self.clock.tick()  # windows already open hold before the first probe
                tuning.settle()  # what lives as long as the daemon is built by now
                self.scheduler = ProbeScheduler(self._spawn, on_skip=self.state.skipped_run)
                self.scheduler.set_jobs(list(self.jobs), self.config.scheduler)
                self.scheduler.start()
                watchdog = asyncio.create_task(self._watchdog())
                windows = asyncio.create_task(self.clock.run())
                collector = asyncio.create_task(collect_garbage())
                trimmer = asyncio.create_task(trim_heap(heap_trimmer()))
                try:
                    self.ready.set()
                    self.notifier.ready(self._status())
                    await stop.wait()
                finally:
                    # Stopped or cancelled: no check starts from here on.
                    self.prober.stopping.set()
                    self.notifier.stopping(f"stopping: {len(self._tasks)} jobs in flight")
                    await self.scheduler.shutdown()
                log.info("stopping: waiting for %d jobs in flight", len(self._tasks))
                windows.cancel()
                collector.cancel()
                trimmer.cancel()
                await self._drain()
                watchdog.cancel()
                for attachment in self._attachments:
                    if attachment.close is not None:
                        attachment.close()
        finally:
            tuning.restore()
            self.store.close()
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            log.info("stopped")

    def _attach(self, attachment: Attachment) -> None:
        """Wire what a started feature declares: its collectors on the registry, its
        observers and verdict listeners beside the state, its pages and status parts."""
        assert self.prober is not None
        taken = [p for p in attachment.routes if p in self.routes or p == "/metrics"]
        if taken:
            raise ValueError(f"{taken[0]} is served already")
        for collector in attachment.collectors:
            self.registry.register(Guarded(collector))
        self.prober.observers.extend(attachment.observers)
        self.prober.judged.extend(attachment.judged)
        self.prober.gates.extend(attachment.gates)
        self.changed.extend(attachment.changed)
        self.routes.update(attachment.routes)
        self._status_parts.update(attachment.status_parts)
        self._attachments.append(attachment)

    def _spawn(self, job: Job) -> asyncio.Task[Any] | None:
        """Start a run of ``job`` in a task of our own (the one task of a run: the
        scheduler waits on it for overlaps, ``_drain`` at stop; the scheduler's shutdown
        never cancels it, so a check in flight finishes and is written); None once
        stopping."""
        assert self.prober is not None and self.scheduler is not None
        if self.prober.stopping.is_set():
            return None
        task = asyncio.create_task(self.prober.run_job(job, self.scheduler.scheduled_at(job.id)))
        self._tasks[task] = job
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    def drain_bound_s(self) -> float:
        """How long a stop may wait: once stopped, a job in flight finishes only the checks
        it is running (the rest do not start, and no retry does), side by side, within their
        attempts' bound (which the config keeps within the interval); never more than
        STOP_LIMIT_S."""
        slowest = max((job.attempts.bound_s for job in self._tasks.values()), default=0.0)
        return min(slowest + DRAIN_SLACK_S, STOP_LIMIT_S)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_bound_s())
        for task in pending:
            log.warning("stop: cancelled %s after %.0fs", self._tasks[task].id,
                        self.drain_bound_s())
            task.cancel()

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog from the event loop itself: if the loop hangs, the pings
        stop and systemd restarts the service (the /metrics thread would keep answering).
        The status line (the fleet by state) is refreshed on the same beat."""
        if not self.notifier.enabled:
            return
        interval = self.notifier.watchdog_interval_s
        while True:
            if interval is not None:
                self.notifier.watchdog()
            self.notifier.status(self._status())
            await asyncio.sleep(interval or STATUS_EVERY_S)

    def _status(self) -> str:
        """``systemctl status``'s line: the fleet by state, e.g. "12 endpoints: 10 up, 1
        down, 1 unknown"."""
        counts = self.state.states()
        by_state = ", ".join(f"{counts[s.value]} {s.value}" for s in State if counts.get(s.value))
        count = sum(counts.values())  # the states add up to the total, by construction
        standing = "".join(f"; {check}: {outcome}"
                           for check, outcome in self.state.standing_outcomes().items())
        return (f"{count} endpoint{'' if count == 1 else 's'}: {by_state or 'none planned'}"
                f"{standing}")

    def _install_signals(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_reload(self) -> None:
        """SIGHUP: reload in a task of its own, so probing and /metrics go on meanwhile."""
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload())
            self._reloading.add_done_callback(_reload_done)

    async def reload(self) -> bool:
        """Re-read the config file; keep running the old config if the new one is invalid or
        cannot be read or applied, whatever the cause (then the reload metric is 0 and one
        line says why). The file is read and parsed in a worker thread: a huge or hostile
        file never stops the event loop (probes, the watchdog) while it is refused."""
        self.state.daemon.reloads_total += 1
        if self.file_config.source is None:
            return False
        self.notifier.reloading()
        try:
            return await self._reload(self.file_config.source)
        except Exception as exc:  # noqa: BLE001 - a bug must not end the reload unseen
            self.state.daemon.reload_ok = False
            log.error("config reload failed: %s: %s; still running the old config",
                      type(exc).__name__, self.redactor(_reason(exc)))
            self.notifier.ready(f"config reload failed; still {self._status()}")
            return False

    async def _reload(self, source: Path) -> bool:
        try:
            new = await asyncio.to_thread(load_config, source, self.env, self.plugins.config)
        except ConfigError as exc:
            self.state.daemon.reload_ok = False
            for line in exc.problems:
                log.error("config reload refused: %s", self.redactor(line))
            if any("environment variable" in line and "is not set" in line
                   for line in exc.problems):
                log.error("config reload refused: the environment (the unit's env file and "
                          "credentials) is read when the service starts: restart it to add a "
                          "secret")
            self.notifier.ready(f"config reload refused ({len(exc.problems)} problems); "
                                f"still {self._status()}")
            return False
        if (new.storage, new.metrics) != (self.config.storage, self.config.metrics):
            log.warning("storage/metrics changes take effect after a restart")
        self.apply(new)
        self.file_config = new
        self.state.daemon.reload_ok = True
        self.state.daemon.reload_success_ts = time.time()
        log.info("config reloaded: %d endpoints", len(self.config.endpoints))
        self.notifier.ready(f"config reloaded; {self._status()}")
        return True

    def apply(self, config: Config) -> bool:
        """Run ``config`` plus what the expanders add: planned once, and the same jobs handed
        to state, scheduler and features; scheduler jobs replaced only where they changed.
        False when nothing changed (the running config object is kept)."""
        for expand in self.expanders:
            config = expand(config)
        config = owned(config)  # configured and discovered endpoints alike
        if config == self.config:
            return False
        # what can fail comes first: a config that cannot be planned leaves the old one running
        jobs = self.plugins.plan(config)
        redactor = Redactor(config.secret_env_names(), self.env)
        self.config, self.jobs, self.redactor = config, jobs, redactor
        install_log_redaction(self.redactor)
        if self.prober is not None:
            self.prober.redactor = self.redactor
            self.prober.allow(concurrency(jobs, config.scheduler))  # discovery grew the plan
        self.state.configure(config, self.jobs)
        if self.scheduler is not None:
            self._open_files()  # discovery may have grown the fleet past the limit
            self.scheduler.set_jobs(list(self.jobs), config.scheduler)
        self._announce_plan()
        return True

    def _open_files(self) -> None:
        """Raise the open-files limit to what the plan can hold open (``open_connections``:
        a kept-alive connection per host, more for checks in flight beside another of their
        host's, at most ``max_concurrent``) and the files beside them; said once per plan
        that needs more than any before it, not at every discovery run."""
        connections = open_connections(self.jobs, self.config.scheduler)
        wanted = connections.total + FD_HEADROOM
        if wanted > self._files_wanted:
            self._files_wanted = wanted
            raise_open_files_limit(wanted, f"{connections}, and {FD_HEADROOM} files beside")

    def _announce_plan(self) -> None:
        self.clock.plan(self.config)
        for attachment in self._attachments:
            if attachment.on_plan is not None:
                try:
                    attachment.on_plan(self.config, self.jobs)
                except Exception:  # noqa: BLE001 - a feature's bug must not stop probing
                    log.exception("a feature failed to take the new plan")


def _reload_done(task: asyncio.Task[bool]) -> None:
    """A reload task's end: ``reload`` handles every failure itself; anything else (a
    BaseException) is logged here in one line rather than left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("config reload failed: %s: %s; still running the old config",
                  type(exc).__name__, _reason(exc) if exc is not None else "")


async def _start(hook: StartupHook, daemon: Daemon) -> Attachment | None:
    started = hook(daemon)
    if inspect.isawaitable(started):
        return await started
    return started
