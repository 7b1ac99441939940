"""Start, watch and stop a real vLLM OpenAI server (CPU build) on 127.0.0.1 for tests.

The server runs in its own venv (see ``.ci/vllm-env``); this module runs in the project's test
venv and needs only the standard library and ``httpx``. Child processes are found by scanning
``/proc``, so it is Linux-only, like vLLM's CPU build.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

SERVED_MODEL = "tiny-llama"
MAX_MODEL_LEN = 256
STARTUP_TIMEOUT_S = 300.0  # generous: in CI the servers start beside the suite
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")

# Flags and environment that make vLLM 0.32 start in ~30 s on a 2-core machine without a GPU.
SERVER_FLAGS = (
    "--dtype", "float32",
    "--enforce-eager",
    "--max-num-seqs", "4",
    "--max-num-batched-tokens", "256",
)  # fmt: skip
SERVER_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class ServerStartError(RuntimeError):
    """The server exited or did not answer /health in time; the message holds its log tail."""


def build_tiny_model(vllm_python: Path, outdir: Path, timeout_s: float = 300.0) -> Path:
    """Build (or reuse) the tiny model with the vLLM venv's python; return its directory."""
    proc = subprocess.run(
        [str(vllm_python), str(TINY_MODEL_SCRIPT), str(outdir)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the tiny model failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return outdir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(comm, ppid) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may itself contain spaces and parentheses.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
    return comm, ppid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def descendants(root_pid: int) -> list[int]:
    """PIDs of all live descendants of ``root_pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _is_engine_core(pid: int) -> bool:
    # vLLM retitles the process "VLLM::EngineCore"; comm is cut to 15 characters.
    stat = _proc_stat(pid)
    return "EngineCore" in _cmdline(pid) or (stat is not None and "EngineCor" in stat[0])


def _pid_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        # A zombie still has a /proc entry; it counts as gone.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class VllmServer:
    """A running ``vllm.entrypoints.openai.api_server`` process (its own process group)."""

    base_url: str
    served_model: str
    max_model_len: int
    pid: int
    log_path: Path
    keep_alive_on_engine_death: bool
    startup_s: float
    process: subprocess.Popen[bytes] = field(repr=False)
    launched_at: float = field(default=0.0, repr=False)

    def until_healthy(self, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> VllmServer:
        """Wait until ``GET /health`` answers 200 (``startup_s``: seconds since the launch),
        or stop the server and raise ``ServerStartError``."""
        try:
            _wait_healthy(self, self.launched_at + startup_timeout_s)
        except BaseException:
            self.stop(grace_s=5)
            raise
        if not self.startup_s:
            self.startup_s = time.monotonic() - self.launched_at
        return self

    def engine_core_pids(self) -> list[int]:
        """PIDs of the ``VLLM::EngineCore`` process(es) under this server."""
        return [pid for pid in descendants(self.pid) if _is_engine_core(pid)]

    def kill_engine_core(self, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        """Kill the EngineCore child (as a crash would) and return the PIDs signalled."""
        pids = self.engine_core_pids()
        if not pids:
            tree = {pid: _cmdline(pid) for pid in descendants(self.pid)}
            raise RuntimeError(f"no EngineCore process under pid {self.pid}; descendants: {tree}")
        for pid in pids:
            os.kill(pid, sig)
        return pids

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 50) -> str:
        try:
            with self.log_path.open(errors="replace") as f:
                return "".join(deque(f, maxlen=lines))
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        members = [self.pid, *descendants(self.pid)]
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.pid, signal.SIGKILL)
        # Children that left the group (none expected) are killed one by one.
        for pid in members:
            if _pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        # Let the kernel finish tearing the others down, so the next server gets the CPU.
        deadline = time.monotonic() + 10
        while any(_pid_alive(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.1)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def start_server(
    vllm_python: Path,
    model_dir: Path,
    workdir: Path,
    *,
    keep_alive_on_engine_death: bool = False,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> VllmServer:
    """Start a server on a free port and wait until ``GET /health`` answers 200."""
    server = launch_server(vllm_python, model_dir, workdir,
                           keep_alive_on_engine_death=keep_alive_on_engine_death)
    return server.until_healthy(startup_timeout_s)


def launch_server(
    vllm_python: Path,
    model_dir: Path,
    workdir: Path,
    *,
    keep_alive_on_engine_death: bool = False,
) -> VllmServer:
    """Start a server on a free port and return at once; ``until_healthy`` waits for it (so
    a test run can start the next server while the current test uses its own)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"vllm-{port}.log"
    cmd = [
        str(vllm_python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", SERVED_MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(MAX_MODEL_LEN),
        *SERVER_FLAGS,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(SERVER_ENV)
    env["VLLM_KEEP_ALIVE_ON_ENGINE_DEATH"] = "1" if keep_alive_on_engine_death else "0"
    env["VLLM_CACHE_ROOT"] = str(workdir / "vllm-cache")

    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,  # own process group: stop() takes the engine with it
        )
    return VllmServer(
        base_url=f"http://127.0.0.1:{port}",
        served_model=SERVED_MODEL,
        max_model_len=MAX_MODEL_LEN,
        pid=process.pid,
        log_path=log_path,
        keep_alive_on_engine_death=keep_alive_on_engine_death,
        startup_s=0.0,
        process=process,
        launched_at=started,
    )


def _wait_healthy(server: VllmServer, deadline: float) -> None:
    # The port refuses connections until the engine is initialised; then /health is 200.
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while True:
            if not server.is_running():
                raise ServerStartError(
                    f"vLLM server exited with code {server.process.returncode} before it was "
                    f"healthy; last log lines ({server.log_path}):\n{server.log_tail()}"
                )
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"vLLM server did not answer GET /health with 200 in time; last log lines "
                    f"({server.log_path}):\n{server.log_tail()}"
                )
            time.sleep(0.5)


class StartVllmServer(Protocol):
    """What the ``start_vllm_server`` fixture returns."""

    def __call__(self, keep_alive_on_engine_death: bool = False) -> VllmServer: ...
