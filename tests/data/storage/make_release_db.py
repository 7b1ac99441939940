"""How ``release-0.1.0/`` was made, with the release's own code (run from the repository
root: ``PYTHONPATH=$PWD python tests/data/storage/make_release_db.py /tmp/state``).

The real daemon runs against the simulated fleet twice, the second time with a short
retention so ``results_rollup`` has rows, and a maintenance window is started from the
command line in between, so every table the release creates holds rows. The keys are
fixed throwaway values the simulator accepts. Afterwards: ``sqlite3 probe.db
"PRAGMA journal_mode=DELETE; VACUUM"`` and copy probe.db, probe.db.ledger-head and
LEARNING.md.
"""

import asyncio
import os
import sys
from pathlib import Path

from probe.app import PLUGINS
from probe.cli import main as cli_main
from probe.commands import load_or_report
from probe.config import Config
from probe.daemon import Daemon
from probe.demo import DEMO_KEY_ENV, DEMO_PROVIDER_KEY_ENV, LEARNING_HEAD, demo_config
from probe.simulator import Fleet, Simulator


async def run(config: Config, seconds: float) -> None:
    daemon = Daemon(config, PLUGINS, dict(os.environ))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop, install_signals=False))
    await daemon.ready.wait()
    await asyncio.sleep(seconds)
    stop.set()
    await task


def main(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    os.environ[DEMO_KEY_ENV] = "demo-fixture-key-not-secret"
    os.environ[DEMO_PROVIDER_KEY_ENV] = "demo-provider-fixture-key-not-secret"
    fleet = Fleet.default(provider_key=os.environ[DEMO_PROVIDER_KEY_ENV])
    with Simulator(fleet, api_key=os.environ[DEMO_KEY_ENV]) as sim:
        (state / "LEARNING.md").write_text(LEARNING_HEAD)
        text = demo_config(sim, fleet, state, 0, "2s")
        path = state / "config.yaml"
        path.write_text(text)
        config = load_or_report(str(path), PLUGINS.config)
        assert config is not None
        asyncio.run(run(config, 12))
        cli_main(["maintenance", "start", "--config", str(path), sorted(fleet.pods)[0],
                  "--for", "1h", "--reason", "fixture window"])
        path.write_text(text.replace("storage:\n", "storage:\n  retention: 5s\n"))
        config = load_or_report(str(path), PLUGINS.config)
        assert config is not None
        asyncio.run(run(config, 4))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
