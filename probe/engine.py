"""The probing engine, built in one place: the checks' HTTP client and the ``Prober`` over
it (the features' checks, the config's bounds, where results are recorded, the secrets to
scrub). The daemon (``run``), a sweep (``once``), the gate and the demo all probe with what
``probing`` builds, so a change to how probing is set up is made once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from probe.config.model import Config
from probe.features import Plugins
from probe.job import Job, concurrency
from probe.loopwatch import LoopWatch
from probe.net import make_client
from probe.prober import Prober, Recorder, keepalive_expiry_s
from probe.secrets import Redactor
from probe.state import FleetState


@asynccontextmanager
async def probing(config: Config, plugins: Plugins, recorder: Recorder | None = None,
                  env: Mapping[str, str] | None = None, state: FleetState | None = None,
                  redactor: Redactor | None = None,
                  jobs: Sequence[Job] | None = None) -> AsyncIterator[Prober]:
    """A ``Prober`` for ``config`` running ``plugins``' checks, its client open for the
    block and closed after it. ``state`` defaults to a fresh ``FleetState`` (a one-off
    sweep's); ``redactor`` to one for the config's secrets in ``env``; ``jobs`` (what its
    checks in flight are sized from, ``probe.job.concurrency``) to ``config``'s plan.
    Idle connections are kept as long as the longest interval needs
    (``keepalive_expiry_s``). The event loop's
    stalls are watched for the block (``probe.loopwatch``): a timeout during one is the
    probe's overload, never the endpoint's."""
    scheduler = config.scheduler
    state = FleetState(plugins.role_of) if state is None else state
    watch = LoopWatch(state.loop_stalled)
    limit = concurrency(plugins.plan(config) if jobs is None else jobs, scheduler)
    async with make_client(scheduler.max_concurrent, keepalive=scheduler.keepalive,
                           keepalive_expiry=keepalive_expiry_s(config)) as client:
        watch.start()
        try:
            yield Prober(client, state, plugins.resolve,
                         limit, scheduler.max_body_bytes, recorder, env,
                         Redactor(config.secret_env_names(), env) if redactor is None
                         else redactor, watch)
        finally:
            watch.stop()
