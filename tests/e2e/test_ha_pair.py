"""An HA pair of the real daemon (two processes on 127.0.0.1) against one simulated fleet,
one config each that differs only in ``instance:`` and, for probe-2, RunPod's proxy at a
closed port (its network to the pods is cut; RunPod's API still answers, so it is online).

- Both learn that ``dead`` (a pod whose engine is dead) is down; the shared LEARNING.md,
  written by the designated writer (``learning.writer: probe-1``) only, has that lesson, and
  every lesson, exactly once, each row naming the writer's ledger; probe-2's ledger keeps its
  own entries, each naming probe-2.
- ``qwen`` is up for probe-1 and down for probe-2: each status page and status.json shows
  both views, its own and its peer's.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from export_servers import wait_for
from helpers import free_port
from simconfig import header, pods, write

PODS = pods("qwen qwen-healthy", "dead dead-engine")
ROW = re.compile(r"^\| (\d{4}-\d\d-\d\d) \| (.+) \| (.+) · (\S+) ledger #(\d+) sha256:[0-9a-f]{12} \|$",
                 re.MULTILINE)


def config(sim: Any, tmp: Path, name: str, ports: list[int], shared: Path,
           closed: int | None = None) -> Path:
    state = tmp / name
    state.mkdir()
    port = ports[int(name[-1]) - 1]
    text = header(sim, state, interval="1s").replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    if closed is not None:  # this probe's way to the pods is cut (RunPod's API is not)
        cut = re.sub(r"^http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{closed}",
                     sim.proxy_template)
        assert cut != sim.proxy_template and f'proxy_url: "{sim.proxy_template}"' in text
        text = text.replace(f'proxy_url: "{sim.proxy_template}"', f'proxy_url: "{cut}"')
    peers = ", ".join(f"http://127.0.0.1:{p}" for p in ports)  # each leaves itself out
    text += (f"instance: {name}\n"
             f"peers: {{urls: [{peers}], every: 1s, timeout: 1s}}\n"
             f'learning: {{path: "{shared}", writer: probe-1}}\n')
    return write(state / "config.yaml", text + PODS)


@pytest.fixture
def pair(sim: Any, tmp_path: Path, sim_env: dict[str, str]) -> Iterator[list[str]]:
    ports, closed = [free_port(), free_port()], free_port()
    shared = tmp_path / "shared" / "LEARNING.md"
    daemons = []
    try:
        for name in ("probe-1", "probe-2"):
            path = config(sim, tmp_path, name, ports, shared,
                          closed if name == "probe-2" else None)
            with (tmp_path / f"{name}.log").open("w") as log:
                daemons.append(subprocess.Popen(
                    [sys.executable, "-m", "probe", "run", "--config", str(path)],
                    env=sim_env, stdout=log, stderr=subprocess.STDOUT))
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.wait(timeout=30)


def states(base: str) -> dict[str, tuple[str, list[tuple[str | None, str | None]]]] | None:
    """Each endpoint: (our state, [(peer instance, its state)]), once both have been judged
    by both probes (None before)."""
    answer = httpx.get(f"{base}/status.json", timeout=5)
    if answer.status_code != 200:  # still starting
        return None
    doc = answer.json()
    out = {e["name"]: (e["state"], [(p["instance"], p["state"]) for p in e["peers"] or []])
           for e in doc["endpoints"]}
    settled = all(own != "unknown" and peers and all(s not in (None, "unknown")
                                                     for _, s in peers)
                  for own, peers in out.values())
    return out if len(out) == 2 and settled else None


def rows(path: Path) -> list[tuple[str, ...]]:
    return ROW.findall(path.read_text()) if path.exists() else []


def ledger(db: Path) -> list[tuple[str, str, str | None]]:
    """(endpoint, event, instance) of every entry, in id order (from 1); none while the
    daemon creates the file."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT endpoint, event, instance FROM ledger ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        conn.close()


def test_an_ha_pair(pair: list[str], tmp_path: Path) -> None:
    both_pages_show_both_views(pair)
    the_shared_learning_md_has_each_lesson_once(tmp_path)


def both_pages_show_both_views(pair: list[str]) -> None:
    one = wait_for(lambda: states(pair[0]), 60, "probe-1 and its peer's view settled")
    two = wait_for(lambda: states(pair[1]), 60, "probe-2 and its peer's view settled")
    assert one["qwen"] == ("up", [("probe-2", "down")])
    assert two["qwen"] == ("down", [("probe-1", "up")])
    assert one["dead"] == ("down", [("probe-2", "down")])
    assert two["dead"] == ("down", [("probe-1", "down")])
    doc = httpx.get(f"{pair[0]}/status.json", timeout=5).json()
    assert doc["instance"] == "probe-1"
    assert [(p["instance"], p["reachable"]) for p in doc["peers"]] == [("probe-2", True)], \
        "the peer list names probe-2 once: probe-1's own URL is left out"
    html = httpx.get(f"{pair[1]}/", timeout=5).text
    qwen = html[html.index('data-endpoint="qwen"'):]
    qwen = qwen[:qwen.index("</tr>")]
    assert "✖ down" in qwen and "probe-1 sees" in qwen and "● up" in qwen


def the_shared_learning_md_has_each_lesson_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "LEARNING.md"
    dbs = {name: tmp_path / name / "probe.db" for name in ("probe-1", "probe-2")}

    def dead_down() -> int | None:
        """The writer's entry saying dead is down, once both learned it and it is a row."""
        if ("dead", "down", "probe-2") not in ledger(dbs["probe-2"]):
            return None
        entries = ledger(dbs["probe-1"])
        if ("dead", "down", "probe-1") not in entries:
            return None
        entry = entries.index(("dead", "down", "probe-1")) + 1
        return entry if any(int(r[4]) == entry for r in rows(shared)) else None

    entry = wait_for(dead_down, 60, "both probes learn dead is down, the writer appends it")
    # another writer cycle or two: nothing more may come of what both already know
    wait_for(lambda: ("qwen", "down", "probe-2") in ledger(dbs["probe-2"]), 30,
             "probe-2 sees qwen down")
    found = rows(shared)
    assert found, shared.read_text()
    assert {r[3] for r in found} == {"probe-1"}, "every row cites the writer's ledger"
    cited = [int(r[4]) for r in found]
    assert len(cited) == len(set(cited)), "no entry is cited twice"
    lessons = [r[1] for r in found]
    assert len(lessons) == len(set(lessons)), "no lesson is written twice"
    dead = [r for r in found if r[1].startswith("RunPod pod dead (dead-engine) ")]
    assert [int(r[4]) for r in dead] == [entry], found
    assert not any(r[1].startswith("RunPod pod qwen ") for r in found), \
        "probe-2's view (its cut network) is in its own ledger, not the shared file"
    # probe-2 learned the same lesson and keeps it, in its own ledger, with its name
    assert {i for _, _, i in ledger(dbs["probe-2"])} == {"probe-2"}
    assert {i for _, _, i in ledger(dbs["probe-1"])} == {"probe-1"}
    assert not (tmp_path / "probe-2" / "LEARNING.md").exists()
