"""Record the real daemon's /metrics over scripted scenarios of the simulated fleet.

Each scenario is a script of steps; a step is one round of probes (every check of every
endpoint has a new result), then one scrape, as Prometheus would take it (the target's
``job`` and ``instance`` labels added, ``up`` 1; a step while the daemon is stopped has no
scrape and ``up`` 0). Only the series the shipped rules read are kept. A recording is a
JSON file under tests/data/recordings/; ``recordings.py`` turns it into promtool input
series, one step a minute: a round of probes at 250 ms stands for one at a minute.

Re-record after a change to the daemon's exposition or to the rules' metrics:

    PYTHONPATH=$PWD python tests/export/record_daemon.py            # every scenario
    PYTHONPATH=$PWD python tests/export/record_daemon.py healthy    # one

No scenario makes a probe time out: a recording in which one did (the machine was loaded)
is recorded again, up to ATTEMPTS times.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE.parent), str(ROOT)]

from daemon_harness import run_daemon, scrape, until  # noqa: E402
from faults import DISK_BYTES, Faults  # noqa: E402
from helpers import load_config  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from probe.daemon import Daemon  # noqa: E402
from probe.export.files import ALERTS_FILE  # noqa: E402

RECORDINGS = ROOT / "tests" / "data" / "recordings"
KEY = "recorder-made-up-key"  # the simulator's account key, a made-up value
INTERVAL_S = 0.25
PODS = ("pod-a", "pod-b", "pod-c")
TARGET = {"job": "runpod-probe", "instance": "127.0.0.1:9464"}
SLO_LE = "2.5"  # the only latency bucket the rules read


@dataclass(frozen=True, slots=True)
class Step:
    note: str
    rounds: int = 1  # steps recorded, each one round of probes
    pods: tuple[tuple[str, str], ...] = ()  # (pod, behaviour) set before the rounds
    api: str | None = None  # RunPod REST API mode set before the rounds
    stopped: bool = False  # the daemon is stopped for these steps (restarted after)
    network: bool | None = None  # False: the simulator stops answering (the probe's host
    # is cut off); True: it answers again
    reload_refused: bool = False  # an invalid config is written and the daemon reloads
    fault: str | None = None  # a method of faults.Faults, done to the running daemon first
    scraped: bool = True  # False: Prometheus has no target for the daemon (its scrape
    # config lost it): no series at all, not even ``up``


SCENARIOS: dict[str, tuple[str, tuple[Step, ...]]] = {
    "healthy": ("three healthy pods", (Step("all healthy", 30),)),
    "dead_pod": ("pod-b stops (404) for 25 minutes, then comes back", (
        Step("all healthy", 5), Step("pod-b stopped", 25, pods=(("pod-b", "stopped"),)),
        Step("pod-b back", 10, pods=(("pod-b", "healthy"),)))),
    "degraded": ("pod-c answers the governed prompt wrongly, pod-a serves another model", (
        Step("all healthy", 5),
        Step("pod-c wrong answer, pod-a wrong model", 30,
             pods=(("pod-c", "wrong_answer"), ("pod-a", "wrong_model"))))),
    "one_bad_result": ("one bad result among good ones: a 502 from pod-b, an unauthorized "
                       "discovery", (
        Step("all healthy", 10), Step("pod-b answers 502 once, RunPod's API refuses once", 1,
                                      pods=(("pod-b", "server_down"),), api="restricted"),
        Step("all healthy again", 39, pods=(("pod-b", "healthy"),), api="ok"))),
    "daemon_restart": ("pod-b down throughout; the daemon stops for 3 minutes and restarts", (
        Step("pod-b stopped, daemon running", 15, pods=(("pod-b", "stopped"),)),
        Step("daemon stopped", 3, stopped=True),
        Step("daemon restarted", 15))),
    "intermittent": ("pod-b answers 502 every third round for 40 rounds: never down, but "
                     "burning its availability budget", (
        Step("all healthy", 5),
        *[Step(note, 1, pods=(("pod-b", behaviour),)) for _ in range(13)
          for note, behaviour in (("pod-b 502", "server_down"), ("pod-b ok", "healthy"),
                                  ("pod-b ok", "healthy"))],
        Step("pod-b ok", 1))),
    "proxy_outage": ("every pod behind RunPod's proxy answers 502 at once, for 20 minutes", (
        Step("all healthy", 5),
        Step("every pod 502", 20, pods=tuple((p, "server_down") for p in PODS)),
        Step("all healthy again", 10, pods=tuple((p, "healthy") for p in PODS)))),
    "probe_offline": ("the probe's host loses the network for 20 minutes", (
        Step("all healthy", 5), Step("nothing answers", 20, network=False),
        Step("the network is back", 10, network=True))),
    "config_reload_refused": ("a config reload is refused: the old config keeps running", (
        Step("all healthy", 3), Step("an invalid config reloaded", 12, reload_refused=True))),
    "key_lacks_permission": ("RunPod's API refuses every listing (403)", (
        Step("listing refused", 40, api="restricted"),)),
    "api_rate_limited": ("RunPod's API answers 429 to everything for 25 minutes", (
        Step("all healthy", 3), Step("RunPod's API rate limits", 25, api="rate_limited"),
        Step("RunPod's API answers again", 8, api="ok"))),
    "check_failing": ("pod-b answers 502 to two requests of three for 30 minutes: never down, "
                      "mostly failing", (
        Step("all healthy", 5), Step("pod-b flaky", 30, pods=(("pod-b", "flaky"),)),
        Step("pod-b ok", 10, pods=(("pod-b", "healthy"),)))),
    "prompt_failing": ("pod-c answers the governed prompt wrongly two times of three for 30 "
                       "minutes: never degraded, mostly wrong", (
        Step("all healthy", 5), Step("pod-c wrong two times of three", 30,
                                     pods=(("pod-c", "flaky_answer"),)),
        Step("pod-c ok", 10, pods=(("pod-c", "healthy"),)))),
    "probe_error": ("a bug in runpod-probe: every check of pod-b raises for 25 minutes", (
        Step("all healthy", 5), Step("pod-b's checks raise", 25, fault="probe_bug"),
        Step("the bug fixed", 10, fault="probe_bug_fixed"))),
    "probe_hang": ("a bug in runpod-probe: a request to pod-b hangs past its deadline for 20 "
                   "minutes, its job never ends", (
        Step("all healthy", 5), Step("pod-b's job hangs", 20, fault="probe_hangs"),
        Step("the hang released", 10, fault="probe_hang_released"))),
    "overloaded": ("the daemon is overloaded for 12 minutes: its event loop blocked 0.4 s of "
                   "every 0.45 s", (
        Step("all healthy", 3), Step("the loop blocked", 12, fault="loop_blocked"),
        Step("the loop free", 14, fault="loop_released"))),
    "unscraped": ("Prometheus's scrape config loses the daemon for 6 minutes", (
        Step("all healthy", 5), Step("no target", 6, scraped=False),
        Step("the target is back", 5))),
    "memory_leak": ("the daemon's resident memory grows over 80 % of 512 MiB for 15 minutes", (
        Step("all healthy", 3), Step("440 MiB more resident", 15, fault="memory_leak"),
        Step("freed", 5, fault="memory_freed"))),
    "ledger_truncated": ("the ledger's last entry is deleted behind its triggers", (
        Step("pod-b stopped: the ledger has entries", 6, pods=(("pod-b", "stopped"),)),
        Step("the last entry deleted", 12, fault="ledger_truncated"))),
    "learning_unwritable": ("LEARNING.md becomes a directory, then pod-b goes down and back", (
        Step("all healthy", 3), Step("LEARNING.md is a directory", 2,
                                     fault="learning_replaced_by_directory"),
        Step("pod-b stopped", 6, pods=(("pod-b", "stopped"),)),
        Step("pod-b back", 20, pods=(("pod-b", "healthy"),)))),
    "disk_full": ("the state directory's filesystem is full for 15 minutes while pod-b is down", (
        Step("all healthy", 3),
        Step("the disk is full, pod-b stopped", 15, fault="disk_full",
             pods=(("pod-b", "stopped"),)),
        Step("the disk freed, pod-b back", 20, fault="disk_freed",
             pods=(("pod-b", "healthy"),)))),
}


def config_text(sim: Any, state: Path) -> str:
    i = f"{INTERVAL_S * 1000:g}ms"
    endpoints = "".join(
        f"  - {{name: {p}, kind: pod, pod_id: {p}, port: 8000, "
        "model: Qwen/Qwen2.5-7B-Instruct}\n" for p in PODS)
    return (
        f'runpod: {{api_key_env: RUNPOD_API_KEY, api_base: "{sim.api_base}", '
        f'proxy_url: "{sim.proxy_template}"}}\n'
        f"defaults: {{interval: {i}, timeout: 200ms, tries: 1, retry_delay: 50ms}}\n"
        f'storage: {{path: "{state / "probe.db"}"}}\n'
        'metrics: {listen: "127.0.0.1:0"}\n'
        "scheduler: {spread: false}\n"
        f'discovery: {{api: "{sim.rest_api_base}", interval: {i}, timeout: 200ms}}\n'
        "endpoints:\n" + endpoints +
        "prompts:\n"
        '  - {name: arithmetic, prompt: "What is 2+2? Answer with the number only.", '
        f"expect: {{regex: '^\\s*4\\s*$'}}, cross: RUNPOD.md Test table, max_tokens: 16, "
        f"interval: {i}}}\n")


def rule_metrics() -> set[str]:
    """The sample names the shipped rules read."""
    text = (ROOT / ALERTS_FILE).read_text()
    return set(re.findall(r"\b((?:runpod_probe|process)_[a-z_]+)\b", text))


def parse(text: str, keep: set[str]) -> dict[str, float]:
    """The kept samples of a scrape, as ``name{labels}`` (sorted, the target's added)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name not in keep or (s.name.endswith("_bucket") and s.labels["le"] != SLO_LE):
                continue
            labels = {**s.labels, **TARGET}
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            out[f"{s.name}{{{inner}}}"] = float(s.value)
    return out


def rounds_done(daemon: Daemon, hung: Collection[str] = ()) -> int:
    """Rounds every check has completed (the slowest check's result count), but those of the
    ``hung`` endpoints."""
    checks = daemon.state.snapshot().checks.items()
    return min((sum(c.outcomes.values()) for (endpoint, _), c in checks if endpoint not in hung),
               default=0)


class Recording:
    def __init__(self, name: str, description: str) -> None:
        self.name, self.description = name, description
        self.steps: list[dict[str, Any]] = []
        self.scrapes: list[dict[str, float] | None] = []

    def add(self, note: str, at: float, samples: dict[str, float] | None,
            scraped: bool = True) -> None:
        """``samples`` None: the daemon is stopped (``up`` 0), or runs unscraped."""
        step = {"note": note, "t": round(at, 3), "daemon": samples is not None or not scraped}
        self.steps.append(step if scraped else {**step, "scraped": False})
        self.scrapes.append(samples)

    def as_json(self) -> dict[str, Any]:
        keys = sorted({k for s in self.scrapes if s for k in s})
        series = {k: [None if s is None else s.get(k) for s in self.scrapes] for k in keys}
        return {"scenario": self.name, "description": self.description,
                "recorded_from": recorded_from(),
                "interval_s": INTERVAL_S, "target": TARGET, "steps": self.steps,
                "series": series}


def recorded_from() -> str:
    """The commit of the daemon that wrote the recording (and whether the tree differed)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()
    dirty = " with uncommitted changes" if git("status", "--porcelain", "--", "probe") else ""
    return f"{git('rev-parse', '--short', 'HEAD')}{dirty}"


OWN_DISK = "RECORDER_OWN_DISK"  # set in the mount namespace of a disk_full scenario


def record(name: str, steps: tuple[Step, ...] | None = None) -> dict[str, Any]:
    """Run the daemon against a fresh simulated fleet through scenario ``name``."""
    from probe.simulator import Fleet, PodSpec, Simulator

    description, script = SCENARIOS[name]
    script = steps or script
    own_disk = any(step.fault == "disk_full" for step in script)
    if own_disk and OWN_DISK not in os.environ:
        return record_on_own_disk(name)
    keep = rule_metrics()
    fleet = Fleet()
    for pod in PODS:
        fleet.add_pod(pod, PodSpec())
    rec = Recording(name, description)
    env = {"RUNPOD_API_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp, Simulator(fleet, api_key=KEY) as sim:
        state = Path(tmp) / "state"
        state.mkdir()
        if own_disk:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs",
                            str(state)], check=True)
        faults = Faults(state)
        try:
            config = Path(tmp) / "config.yaml"
            config.write_text(config_text(sim, state))
            loaded = load_config(config, env)
            pending = list(script)
            while pending:
                if pending[0].stopped:
                    step = pending.pop(0)
                    for _ in range(step.rounds):
                        rec.add(step.note, time.time(), None)
                    continue
                run = []
                while pending and not pending[0].stopped:
                    run.append(pending.pop(0))
                run_daemon(loaded, env, _scenario(sim, run, rec, keep, config, faults))
        finally:
            faults.close()
            if own_disk:
                subprocess.run(["umount", str(state)], check=True)
    return rec.as_json()


def record_on_own_disk(name: str) -> dict[str, Any]:
    """Record ``name`` in a child process with a mount namespace of its own (``unshare``,
    no root needed where user namespaces are allowed), its state on a small tmpfs that
    the scenario can fill."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "recording.json"
        subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable,
                        __file__, "--to", str(out), name], check=True,
                       env={**os.environ, OWN_DISK: "1"})
        recording: dict[str, Any] = json.loads(out.read_text())
    recording["recorded_from"] = recorded_from()
    return recording


def _scenario(sim: Any, steps: list[Step], rec: Recording, keep: set[str],
              config: Path, faults: Faults) -> Callable[[Daemon], Any]:
    async def scenario(daemon: Daemon) -> None:
        first = True
        for step in steps:
            for pod, behaviour in step.pods:
                sim.fleet.set_pod_behaviour(pod, behaviour)
            if step.api:
                sim.fleet.set_api_mode(step.api)
            if step.network is False:
                sim.stop()
            elif step.network is True:
                sim.start()
            if step.reload_refused:
                config.write_text(config.read_text().replace("tries: 1", "tries: -1"))
                assert not await daemon.reload()
            if step.fault:
                faults(step.fault)
            for _ in range(step.rounds):
                if first:  # what the daemon says at once, before its first round
                    rec.add(step.note, time.time(), parse(await scrape(daemon), keep))
                    first = False
                    continue
                done = rounds_done(daemon, faults.hung)
                await until(lambda d=done: rounds_done(daemon, faults.hung) > d, 10,
                            "a round of probes")
                if not step.scraped:
                    rec.add(step.note, time.time(), None, scraped=False)
                    continue
                rec.add(step.note, time.time(), parse(await scrape(daemon), keep))
    return scenario


def write(recording: dict[str, Any], directory: Path = RECORDINGS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{recording['scenario']}.json"
    head = {k: v for k, v in recording.items() if k != "series"}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in recording["series"].items()]
    text = json.dumps(head, indent=1, sort_keys=True)[:-2]
    path.write_text(text + ',\n "series": {\n' + ",\n".join(lines) + "\n }\n}\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} "
                        "(default: all)")
    parser.add_argument("--to", type=Path, help=argparse.SUPPRESS)  # record_on_own_disk's
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - SCENARIOS.keys()
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.to:
        args.to.write_text(json.dumps(record(args.scenarios[0])))
        return 0
    for name in args.scenarios or SCENARIOS:
        print(write(record_quiet(name)))
    return 0


ATTEMPTS = 6


def record_quiet(name: str) -> dict[str, Any]:
    """``name`` recorded on a quiet machine: no scenario makes a probe time out (at 200 ms),
    so a recording with a timeout saw the machine's load, not the script: record again."""
    for attempt in range(1, ATTEMPTS + 1):
        recording = record(name)
        late = timed_out(recording)
        if not late:
            return recording
        print(f"{name}: {', '.join(late)} timed out (load?); attempt {attempt} of "
              f"{ATTEMPTS}", file=sys.stderr)
    raise SystemExit(f"{name}: probes kept timing out; record on a quieter machine")


def timed_out(recording: dict[str, Any]) -> list[str]:
    """The endpoints some probe of which timed out in ``recording`` (and "runpod-probe"
    when it was overloaded, but in the scenario that overloads it)."""
    late = {m.group(1) for key in recording["series"]
            if key.startswith("runpod_probe_failures_by_outcome_total{")
            and 'outcome="timeout"' in key
            and (m := re.search(r'endpoint="([^"]+)"', key))}
    if recording["scenario"] != "overloaded" and any(
            any(v for v in values if v) for key, values in recording["series"].items()
            if key.startswith(("runpod_probe_overload_unobserved_total",
                               "runpod_probe_overload_skipped_checks_total"))):
        late.add("runpod-probe")
    return sorted(late)


if __name__ == "__main__":
    raise SystemExit(main())
