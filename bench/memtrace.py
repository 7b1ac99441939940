"""Memory per pod, from two traced runs of the daemon (``bench/memtrace/sitecustomize.py``):
the difference between the snapshots at N1 and N2 pods, divided by N2 - N1, so that fixed
costs (imported code, caches of a fixed size) drop out.

    PYTHONPATH=$PWD/bench/memtrace MEMTRACE_OUT=/tmp/m1000 \\
        python bench/scale.py --endpoints 1000 --checks default --seconds 30 --no-blackbox
    (the same with 2000 and /tmp/m2000)
    python bench/memtrace.py /tmp/m1000 1000 /tmp/m2000 2000 [--top 40]

Prints the cyclic garbage each snapshot held (the daemon collects on a clock: a cycle that
outlived half a second waits up to 10 minutes), then bytes per pod by file:line
(tracemalloc, where the block was allocated; garbage included) and by type
(``sys.getsizeof`` of the objects the collector tracks after a collection, which leaves
out what they point to that it does not track: str, bytes, numbers).
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from collections import Counter


def by_line(prefix: str) -> Counter[str]:
    snapshot = tracemalloc.Snapshot.load(prefix + ".snapshot")
    out: Counter[str] = Counter()
    for stat in snapshot.statistics("lineno"):
        frame = stat.traceback[0]
        name = frame.filename
        for marker in ("site-packages/", "lib/python3.11/", "/probe/"):
            if marker in name:
                name = ("probe/" if marker == "/probe/" else "") + name.split(marker, 1)[1]
                break
        out[f"{name}:{frame.lineno}"] += stat.size
    return out


def by_type(prefix: str) -> Counter[str]:
    with open(prefix + ".types") as source:
        return Counter({name: size for name, (size, _) in json.load(source).items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("small")
    parser.add_argument("small_pods", type=int)
    parser.add_argument("large")
    parser.add_argument("large_pods", type=int)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    pods = args.large_pods - args.small_pods
    for prefix, count in ((args.small, args.small_pods), (args.large, args.large_pods)):
        try:
            with open(prefix + ".garbage") as source:
                garbage = json.load(source)
        except FileNotFoundError:
            continue
        print(f"cyclic garbage at {count} pods (in the snapshot, freed by a full "
              f"collection): {garbage['bytes'] / 1e6:.1f} MB; objects: " + ", ".join(
                  f"{name} {n:,}" for name, n in list(garbage["objects"].items())[:8]))
    for title, read in (("file:line", by_line), ("type", by_type)):
        small, large = read(args.small), read(args.large)
        delta = Counter({k: large.get(k, 0) - small.get(k, 0) for k in set(small) | set(large)})
        print(f"\nby {title}: {sum(small.values()) / 1e6:.1f} MB at {args.small_pods} pods, "
              f"{sum(large.values()) / 1e6:.1f} MB at {args.large_pods}, "
              f"{sum(delta.values()) / pods:,.0f} B per pod")
        for name, size in delta.most_common(args.top):
            print(f"  {size / pods:9,.0f} B/pod  {name}")


if __name__ == "__main__":
    main()
