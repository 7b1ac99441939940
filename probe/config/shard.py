"""The ``shard:`` section: which share of the fleet this daemon probes.

``shard: {index: 1, count: 3}`` splits the fleet (configured and discovered endpoints
alike) between ``count`` daemons by rendezvous (highest-random-weight) hashing on the
endpoint's name: each shard scores every name, and a name belongs to the shard with the
highest score. A score depends only on the name and the shard's index, never on ``count``,
so going from n to n+1 shards moves only the names the new shard now wins (about 1/(n+1)
of the fleet) and nothing between the shards that were already there. Indexes count from 0.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from probe.config.fields import Fields, Problems
from probe.config.model import Config, Shard

KEYS = ("index", "count")
MAX_SHARDS = 1024


def parse_shard(raw: Any, problems: Problems) -> Shard | None:
    """The ``shard:`` section (absent: the whole fleet). Both keys are required and
    checked: a daemon that cannot tell its share must not probe someone else's."""
    if raw is None:
        return None
    f = Fields(raw, "shard", problems, KEYS)
    count = f.integer("count", minimum=1, required=True)
    index = f.integer("index", minimum=0, required=True)
    if count is not None and count > MAX_SHARDS:
        f.fail("count", f"must be at most {MAX_SHARDS}, got {count}")
        return None
    if count is None or index is None:
        return None
    if index >= count:
        f.fail("index", f"must be below count ({count}): shards are numbered 0 to "
                        f"{count - 1}, got {index}")
        return None
    return Shard(index, count)


def owned(config: Config) -> Config:
    """``config`` with only the endpoints its shard probes (all of them without one)."""
    shard = config.shard
    if shard is None or shard.count == 1:
        return config
    return replace(config, endpoints=tuple(e for e in config.endpoints
                                           if shard.owns(e.name)))
