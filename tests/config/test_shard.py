"""``shard:``: parsing fails closed, and rendezvous hashing moves only the new shard's share."""

from __future__ import annotations

import pytest
from helpers import parse_config

from probe.config import ConfigError
from probe.config.model import Shard, owner
from probe.config.shard import owned

BASE = ("runpod: {api_key_env: RUNPOD_API_KEY}\n"
        "endpoints:\n" + "".join(f"  - {{name: pod-{i}, kind: pod, pod_id: p{i}}}\n"
                                 for i in range(40)))
ENV = {"RUNPOD_API_KEY": "made-up-key"}
NAMES = [f"pod-{i:05d}" for i in range(20_000)]


def test_a_shard_keeps_only_the_endpoints_it_owns() -> None:
    configs = [parse_config(BASE + f"shard: {{index: {i}, count: 3}}\n", ENV) for i in range(3)]
    kept = [{e.name for e in owned(c).endpoints} for c in configs]
    assert set().union(*kept) == {f"pod-{i}" for i in range(40)}
    assert sum(len(k) for k in kept) == 40, "no endpoint in two shards"
    assert all(kept), "every shard gets some of 40 endpoints"
    assert configs[1].shard == Shard(1, 3)


def test_without_a_shard_every_endpoint_is_kept() -> None:
    config = parse_config(BASE, ENV)
    assert config.shard is None
    assert owned(config) is config


@pytest.mark.parametrize(("section", "problem"), [
    ("{index: 3, count: 3}", "shard.index: must be below count (3)"),
    ("{index: 0}", "shard.count: required field is missing"),
    ("{count: 2}", "shard.index: required field is missing"),
    ("{index: -1, count: 2}", "shard.index: must be at least 0"),
    ("{index: 0, count: 0}", "shard.count: must be at least 1"),
    ('{index: "1", count: 2}', "shard.index: expected a whole number"),
    ("{index: 0, count: 2, replica: 1}", "shard.replica: unknown key"),
    ("[0, 2]", "shard: expected a mapping"),
    ("{index: 0, count: 5000}", "shard.count: must be at most 1024"),
])
def test_a_bad_shard_section_is_refused(section: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + f"shard: {section}\n", ENV)
    assert any(line.startswith(problem) for line in refused.value.problems), \
        refused.value.problems


@pytest.mark.parametrize("count", [1, 2, 3, 5, 9])
def test_adding_a_shard_moves_only_its_share(count: int) -> None:
    before = {name: owner(name, count) for name in NAMES}
    after = {name: owner(name, count + 1) for name in NAMES}
    moved = [name for name in NAMES if before[name] != after[name]]
    assert all(after[name] == count for name in moved), "only to the new shard"
    share = len(moved) / len(NAMES)
    assert abs(share - 1 / (count + 1)) < 0.02, (count, share)


def test_shards_are_balanced() -> None:
    counts = [0] * 4
    for name in NAMES:
        counts[owner(name, 4)] += 1
    assert all(abs(c / len(NAMES) - 0.25) < 0.02 for c in counts), counts
