"""``python -m probe.simulator``: serve a simulated fleet until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from probe.simulator.fleet import Fleet
from probe.simulator.simulator import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m probe.simulator", description="Serve a simulated RunPod fleet."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199, help="0 picks a free port")
    parser.add_argument("--fleet", default="default", help="'default' or 'bench:N'")
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <key>', the key read from this env variable",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"error: environment variable {args.api_key_env} is not set", file=sys.stderr)
            return 2
    try:
        fleet = Fleet.named(args.fleet)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim = Simulator(fleet, host=args.host, port=args.port, api_key=api_key)
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"base_url: {sim.base_url}")
    print(f"proxy_template: {sim.proxy_template}")
    print(f"api_base: {sim.api_base}")
    for name in fleet.openai:
        print(f"openai_base[{name}]: {sim.openai_base(name)}")
    print(
        f"serving {len(fleet.pods)} pods, {len(fleet.serverless)} serverless endpoints, "
        f"{len(fleet.openai)} OpenAI providers"
        + (f"; auth required (key from ${args.api_key_env})" if api_key else ""),
        flush=True,
    )
    while not stop.wait(3600):
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
