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
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE.parent), str(ROOT)]

from daemon_harness import run_daemon, scrape, until  # noqa: E402
from helpers import load_config  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from probe.daemon import Daemon  # noqa: E402
from probe.export import ALERTS_FILE  # noqa: E402

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


def rounds_done(daemon: Daemon) -> int:
    """Rounds every check has completed (the slowest check's result count)."""
    checks = daemon.state.snapshot().checks.values()
    return min((sum(c.outcomes.values()) for c in checks), default=0)


class Recording:
    def __init__(self, name: str, description: str) -> None:
        self.name, self.description = name, description
        self.steps: list[dict[str, Any]] = []
        self.scrapes: list[dict[str, float] | None] = []

    def add(self, note: str, at: float, samples: dict[str, float] | None) -> None:
        self.steps.append({"note": note, "t": round(at, 3), "daemon": samples is not None})
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


def record(name: str, steps: tuple[Step, ...] | None = None) -> dict[str, Any]:
    """Run the daemon against a fresh simulated fleet through scenario ``name``."""
    from probe.simulator import Fleet, PodSpec, Simulator

    description, script = SCENARIOS[name]
    script = steps or script
    keep = rule_metrics()
    fleet = Fleet()
    for pod in PODS:
        fleet.add_pod(pod, PodSpec())
    rec = Recording(name, description)
    env = {"RUNPOD_API_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp, Simulator(fleet, api_key=KEY) as sim:
        config = Path(tmp) / "config.yaml"
        config.write_text(config_text(sim, Path(tmp)))
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
            run_daemon(loaded, env, _scenario(sim, run, rec, keep, config))
    return rec.as_json()


def _scenario(sim: Any, steps: list[Step], rec: Recording, keep: set[str],
              config: Path) -> Callable[[Daemon], Any]:
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
            for _ in range(step.rounds):
                if first:  # what the daemon says at once, before its first round
                    rec.add(step.note, time.time(), parse(await scrape(daemon), keep))
                    first = False
                    continue
                done = rounds_done(daemon)
                await until(lambda d=done: rounds_done(daemon) > d, 10, "a round of probes")
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
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - SCENARIOS.keys()
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    for name in args.scenarios or SCENARIOS:
        print(write(record(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
