"""Summarise a py-spy collapsed-stack file (``bench/scale.py --profile FILE``): the share of
samples per thread, and the functions with the largest inclusive and self shares.

    python bench/stacks.py FILE [--top 40] [--grep probe/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frame_name(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/", "/probe/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker in ("/probe/", "/bench/"):
                path = marker.strip("/") + "/" + path
            break
    return f"{path}::{m.group('func')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", default="", help="only functions whose name has this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in args.file.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        names = [frame_name(f) for f in frames[1:]]
        for name in set(names):
            inclusive[name] += count
        if names:
            own[names[-1]] += count
    print(f"{total} samples; by root frame (main thread, writer threads, ...):")
    for thread, count in threads.most_common(6):
        print(f"  {100 * count / total:5.1f}%  {thread}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        shown = [(n, c) for n, c in counter.most_common() if args.grep in n][: args.top]
        for name, count in shown:
            print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
