"""Discovery end to end: the real daemon lists the simulator's fleet through its REST API
(real sockets on 127.0.0.1), probes what it found, follows changes, and reports a key
without permission or a rate-limited API honestly while the fleet keeps being probed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import ledger_rows, run_daemon, scrape, until
from simconfig import header, pods, write

from probe.daemon import Daemon
from probe.simulator import Fleet, PodSpec, ServerlessSpec, Simulator
from probe.store import latest_results

SEED = Path(__file__).parents[1] / "data" / "learning" / "LEARNING.md"
FAST_LEDGER = "ledger: {down_after: 1, up_after: 1}\n"
DEFAULT_FLEET_RUNNING = {"qwen-healthy", "vllm-down", "slow-pod", "small-ctx", "other-model",
                         "garbage-pod", "endless-pod", "dead-engine", "wrong-answer"}


def discovery(sim: Simulator, interval: str = "300ms", extra: str = "") -> str:
    return f'discovery: {{api: "{sim.rest_api_base}", interval: {interval}, timeout: 250ms' \
           f"{extra}}}\n"


def names(daemon: Daemon) -> set[str]:
    return {e.name for e in daemon.config.endpoints}


def runs(daemon: Daemon, endpoint: str, check: str) -> int:
    state = daemon.state.snapshot().checks.get((endpoint, check))
    return sum(state.outcomes.values()) if state else 0


def outcome(daemon: Daemon, endpoint: str = "runpod-api", check: str = "discovery") -> str | None:
    latest = daemon.state.latest(endpoint, check)
    return str(latest.outcome) if latest else None


def ledger(db: Path) -> list[Any]:
    return ledger_rows(db, "endpoint, event, pattern")


def test_a_config_with_only_discovery_probes_the_whole_fleet(
        sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> None:
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + discovery(sim, "1m", ", "
                   "defaults: {model: Qwen/Qwen2.5-7B-Instruct}"))
    expected = DEFAULT_FLEET_RUNNING | {"vllm-healthy", "vllm-incident", "vllm-cold"}

    async def scenario(daemon: Daemon) -> str:
        # discovery ran before the scheduler started: the first sweep already has the fleet
        assert names(daemon) == expected
        await until(lambda: all(runs(daemon, n, daemon.config.endpoint(n).checks[0]) >= 1
                                for n in expected))
        return await scrape(daemon)

    text = run_daemon(config, sim_env, scenario)
    assert 'runpod_probe_discovered_endpoints{kind="pod"} 9.0' in text
    assert 'runpod_probe_discovered_endpoints{kind="serverless"} 3.0' in text
    assert 'runpod_probe_discovery_skipped{kind="pod"} 1.0' in text, "deepseek-stopped: EXITED"
    assert 'runpod_probe_up{check="discovery",endpoint="runpod-api"} 1.0' in text
    assert 'runpod_probe_outcome{check="discovery",endpoint="runpod-api"' not in text, \
        "an ok check has no outcome series"
    assert 'runpod_probe_outcome{check="models",endpoint="other-model",' \
           'outcome="model_missing"} 1.0' in text, "discovery defaults applied"
    rows = {(r["endpoint"], r["check_name"]): r for r in latest_results(tmp_path / "probe.db")}
    assert rows[("runpod-api", "discovery")]["outcome"] == "ok"
    assert rows[("qwen-healthy", "models")]["outcome"] == "ok"
    assert rows[("vllm-incident", "queue")]["outcome"] == "crash_looping"
    assert rows[("vllm-down", "models")]["outcome"] == "http_502"


@pytest.fixture
def small_sim(sim_env: dict[str, str]) -> Iterator[Simulator]:
    fleet = Fleet()
    fleet.add_pod("p-a", PodSpec(name="alpha"))
    fleet.add_pod("p-b", PodSpec(name="beta"))
    fleet.add_serverless("e-q", ServerlessSpec(name="queue"))
    with Simulator(fleet, api_key=sim_env["RUNPOD_API_KEY"]) as simulator:
        yield simulator


def test_pods_added_and_removed_at_runtime_follow_with_ledger_entries(
        small_sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    sim = small_sim
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="200ms", timeout="150ms")
                   + FAST_LEDGER + discovery(sim))

    async def scenario(daemon: Daemon) -> dict[str, Any]:
        assert names(daemon) == {"alpha-p-a", "beta-p-b", "queue-e-q"}
        assert daemon.scheduler is not None
        first = {j.id: j for j in daemon.scheduler.jobs()}
        await until(lambda: runs(daemon, "runpod-api", "discovery") >= 2)
        sim.fleet.add_pod("p-new", PodSpec(name="gamma"))
        await until(lambda: "gamma-p-new" in names(daemon))
        await until(lambda: runs(daemon, "gamma-p-new", "models") >= 1)
        sim.fleet.remove_pod("p-a")
        await until(lambda: "alpha-p-a" not in names(daemon))
        await until(lambda: ("alpha-p-a", "disappeared") in {e[:2] for e in ledger(db)})
        kept = {j.id: j for j in daemon.scheduler.jobs()}
        return {"before": first, "after": kept}

    jobs = run_daemon(config, sim_env, scenario)
    before, after = jobs["before"]["beta-p-b/checks"], jobs["after"]["beta-p-b/checks"]
    assert before.trigger.start_date == after.trigger.start_date, \
        "discovery runs that changed other endpoints did not restart beta's interval"
    entries = [e for e in ledger(db) if e[1] in ("appeared", "disappeared")]
    assert entries == [
        ("alpha-p-a", "appeared", "RunPod pod alpha-p-a (p-a) discovered via the RunPod API — "
                                  "added to the probed fleet"),
        ("beta-p-b", "appeared", "RunPod pod beta-p-b (p-b) discovered via the RunPod API — "
                                 "added to the probed fleet"),
        ("queue-e-q", "appeared", "RunPod serverless endpoint queue-e-q (e-q) discovered via "
                                  "the RunPod API — added to the probed fleet"),
        ("gamma-p-new", "appeared", "RunPod pod gamma-p-new (p-new) discovered via the RunPod "
                                    "API — added to the probed fleet"),
        ("alpha-p-a", "disappeared", "RunPod pod alpha-p-a (p-a) no longer discovered via the "
                                     "RunPod API (gone, not running or filtered out) — no "
                                     "longer probed"),
    ]
    assert not any(e[0] == "runpod-api" for e in ledger(db)), "runpod-api never comes or goes"


def test_a_restricted_key_is_a_finding_and_configured_endpoints_keep_being_probed(
        small_sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    sim = small_sim
    sim.fleet.set_api_mode("restricted")
    learning = tmp_path / "LEARNING.md"
    shutil.copyfile(SEED, learning)
    db = tmp_path / "probe.db"
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="200ms", timeout="150ms")
                   + FAST_LEDGER + f"learning: {{path: {learning}}}\n" + discovery(sim)
                   + pods("mine p-b"))

    async def scenario(daemon: Daemon) -> str:
        await until(lambda: ("runpod-api", "down") in {e[:2] for e in ledger(db)})
        await until(lambda: runs(daemon, "mine", "models") >= 3)
        await until(lambda: "lacks pod management" in learning.read_text())
        return await scrape(daemon)

    text = run_daemon(config, sim_env, scenario)
    assert 'runpod_probe_outcome{check="discovery",endpoint="runpod-api",' \
           'outcome="unauthorized"} 1.0' in text
    assert 'runpod_probe_up{check="models",endpoint="mine"} 1.0' in text
    assert 'runpod_probe_discovered_endpoints{kind="pod"} 0.0' in text
    finding = ("RunPod API key lacks pod management and serverless endpoint permissions — GET "
               "/pods and /serverless return 403; cannot list them programmatically")
    assert ("runpod-api", "down", finding) in ledger(db)
    assert finding in learning.read_text()
    rows = {(r["endpoint"], r["check_name"]): r for r in latest_results(db)}
    assert (rows[("runpod-api", "discovery")]["outcome"],
            rows[("runpod-api", "discovery")]["http_status"]) == ("unauthorized", 403)
    assert rows[("mine", "models")]["outcome"] == "ok"


def test_a_rate_limited_api_is_unknown_and_keeps_the_fleet(
        small_sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    sim = small_sim
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="200ms", timeout="150ms")
                   + discovery(sim))

    async def scenario(daemon: Daemon) -> tuple[set[str], str | None, str]:
        fleet = names(daemon)
        sim.fleet.set_api_mode("rate_limited")
        sim.fleet.remove_pod("p-a")  # not seen while the API refuses to list
        await until(lambda: outcome(daemon) == "unknown")
        probed_before = runs(daemon, "alpha-p-a", "models")
        await until(lambda: runs(daemon, "alpha-p-a", "models") >= probed_before + 2)
        latest = daemon.state.latest("runpod-api", "discovery")
        assert latest is not None
        text = await scrape(daemon)
        return fleet, latest.message, text

    fleet, message, text = run_daemon(config, sim_env, scenario)
    assert fleet == {"alpha-p-a", "beta-p-b", "queue-e-q"}
    assert message is not None and message.startswith("RunPod's API did not answer "
                                                      "(rate_limited: ")
    assert message.endswith("); probing the last known fleet (2 pods, 1 serverless endpoint)")
    assert 'runpod_probe_up{check="discovery",endpoint="runpod-api"} 0.0' in text
    assert 'runpod_probe_discovered_endpoints{kind="pod"} 2.0' in text


def test_a_reload_applies_new_filters_to_the_last_listing_at_once(
        small_sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    sim = small_sim
    base = header(sim, tmp_path, interval="200ms", timeout="150ms")
    config = write(tmp_path / "c.yaml", base + discovery(sim, "1m"))

    async def scenario(daemon: Daemon) -> None:
        await until(lambda: outcome(daemon) == "ok")
        asked = sim.request_count
        config.write_text(base + discovery(sim, "1m", ', include: "^beta"') + pods("mine p-a"))
        assert await daemon.reload()
        assert names(daemon) == {"mine", "beta-p-b"}, "the file's filter, the last listing"
        assert outcome(daemon) == "ok", "discovery's own result survives the reload"
        await until(lambda: runs(daemon, "mine", "models") >= 1)
        assert not any("/api/v2/" in r.path for r in sim.requests_seen[asked:]), \
            "nothing was listed again"

    run_daemon(config, sim_env, scenario)


def test_a_restart_while_the_api_is_down_keeps_probing_the_remembered_fleet(
        small_sim: Simulator, tmp_path: Path, sim_env: dict[str, str]) -> None:
    """The last successful listing is kept beside the database: after a restart whose first
    listing fails, the discovered endpoints are still probed and nothing is recorded as gone."""
    sim = small_sim
    config = write(tmp_path / "c.yaml", header(sim, tmp_path, interval="200ms", timeout="150ms")
                   + discovery(sim, "1m"))

    async def first_run(daemon: Daemon) -> set[str]:
        await until(lambda: runs(daemon, "alpha-p-a", "models") >= 1)
        return names(daemon)

    assert run_daemon(config, sim_env, first_run) == {"alpha-p-a", "beta-p-b", "queue-e-q"}
    assert (tmp_path / "probe.db.discovery.json").exists()
    sim.fleet.set_api_mode("api_error")

    async def restart(daemon: Daemon) -> tuple[set[str], str | None]:
        await until(lambda: runs(daemon, "alpha-p-a", "models") >= 2)
        return names(daemon), outcome(daemon)

    fleet, api = run_daemon(config, sim_env, restart)
    assert fleet == {"alpha-p-a", "beta-p-b", "queue-e-q"} and api == "unknown"
    events = [row[:2] for row in ledger(tmp_path / "probe.db")]
    assert not [e for e in events if e[1] == "disappeared"], events
    assert events.count(("alpha-p-a", "appeared")) == 1
    assert b"sim-key" not in (tmp_path / "probe.db.discovery.json").read_bytes()


def test_a_damaged_remembered_listing_is_ignored(tmp_path: Path) -> None:
    from probe.discovery import memory
    from probe.discovery.listing import Listed

    path = tmp_path / "probe.db.discovery.json"
    listed = {"pod": (Listed("pod", "p1", "alpha", "RUNNING", None, ("8000/http",)),)}
    memory.save(path, listed)
    assert memory.load(path) == listed
    path.write_text("{not json")
    assert memory.load(path) == {}
    path.write_text('{"pod": [{"unexpected": 1}]}')
    assert memory.load(path) == {}


@pytest.mark.parametrize("setting", [True, False], ids=["maintenance", "down"])
def test_a_configured_pod_its_owner_stopped(sim: Any, tmp_path: Path, sim_env: dict[str, str],
                                            setting: bool) -> None:
    """RunPod lists deepseek-stopped as EXITED. With stopped_pods_are_maintenance its 404 is
    maintenance (one entry, alerts silenced); without, it is down."""
    extra = ", stopped_pods_are_maintenance: true" if setting else ""
    config = write(tmp_path / "c.yaml", header(sim, tmp_path) + discovery(sim, "1m", extra)
                   + pods("mine deepseek-stopped checks: [models]") + FAST_LEDGER)

    async def scenario(daemon: Daemon) -> str:
        await until(lambda: runs(daemon, "mine", "models") >= 3)
        return await scrape(daemon)

    text = run_daemon(config, sim_env, scenario)
    state = "maintenance" if setting else "down"
    assert f'runpod_probe_endpoint_state{{endpoint="mine",state="{state}"}} 1.0' in text
    assert f'runpod_probe_maintenance{{endpoint="mine"}} {1.0 if setting else 0.0}' in text
    events = [(event, pattern) for name, event, pattern in ledger(tmp_path / "probe.db")
              if name == "mine" and event != "appeared"]
    if setting:
        assert events == [("maintenance_started", "RunPod pod mine (deepseek-stopped) in "
                           "maintenance (stopped by its owner: pod EXITED per RunPod API; "
                           "declared by discovery) while it stays so — checks go on, alerts "
                           "are silenced")]
    else:
        assert [event for event, _ in events] == ["down"]
