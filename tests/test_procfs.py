"""process_* series from /proc/self alone (the unit's ProcSubset=pid hides /proc/stat):
the collector on a fake proc root, and the real daemon in a PID and mount namespace whose
/proc is mounted ``subset=pid``, scraped over a real socket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, tool, wait_metrics

from probe.procfs import ProcSelfCollector

# a process named "a) b (c", with the fields prometheus_client reads
STAT = ("4242 (a) b (c) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 "
        "12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
LIMITS = ("Limit                     Soft Limit           Hard Limit           Units\n"
          "Max open files            4096                 65536                files\n")


def fake_proc(root: Path) -> Path:
    me = root / "self"
    (me / "fd").mkdir(parents=True)
    for fd in ("0", "1", "2", "7"):
        (me / "fd" / fd).write_text("")
    (me / "stat").write_text(STAT)
    (me / "limits").write_text(LIMITS)
    return root  # no root / "stat": as under ProcSubset=pid


def test_collector_reads_proc_self_without_proc_stat(tmp_path: Path) -> None:
    collector = ProcSelfCollector(fake_proc(tmp_path), booted=lambda _: 1_000_000.0)
    values = {m.name: m.samples[0].value for m in collector.collect()}
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    assert values == {
        "process_virtual_memory_bytes": 104857600.0,
        "process_resident_memory_bytes": 2560.0 * page,
        "process_start_time_seconds": 1_000_000.0 + 12345 / ticks,
        "process_cpu_seconds": 300 / ticks,
        "process_open_fds": 4,
        "process_max_fds": 4096.0,
    }


def test_collector_boot_time_without_proc_stat_is_the_boot_clock(tmp_path: Path) -> None:
    from probe.procfs import boot_time

    real = float(next(line.split()[1] for line in Path("/proc/stat").read_text().splitlines()
                      if line.startswith("btime ")))
    assert boot_time(tmp_path) == pytest.approx(real, abs=2)


def test_open_fds_on_the_real_proc_are_counted_as_many_as_are_open() -> None:
    """On the real /proc the count is fd/'s size (one stat, Linux 6.2 on), else its entries:
    either way every descriptor open, and none that listing fd/ opens itself."""
    collector = ProcSelfCollector()

    def open_fds() -> float:
        return next(m.samples[0].value for m in collector.collect()
                    if m.name == "process_open_fds")

    before = open_fds()
    held = [open(os.devnull) for _ in range(300)]  # noqa: SIM115 - held open on purpose
    try:
        during = open_fds()
        listed = len(os.listdir("/proc/self/fd")) - 1  # less the one the listing opens
    finally:
        for f in held:
            f.close()
    assert during - before == 300
    assert during == listed


def test_collector_without_proc_self_exports_nothing(tmp_path: Path) -> None:
    assert list(ProcSelfCollector(tmp_path).collect()) == []




def subset_pid_works() -> bool:
    done = subprocess.run([tool("unshare"), "--mount", "--pid", "--fork", "sh", "-c",
                           "mount -t proc -o subset=pid proc /proc && test ! -e /proc/stat"],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def test_daemon_under_subset_pid_proc_exports_resident_memory(sim: Any, tmp_path: Path,
                                                             sim_env: dict[str, str]) -> None:
    from simconfig import header, pods, write

    if not subset_pid_works():
        if os.environ.get("RUNPOD_PROBE_REQUIRE_INTEGRATION") == "1":
            pytest.fail("a /proc mounted subset=pid is required (unshare as root)")
        pytest.skip("cannot mount /proc with subset=pid here (needs root or user namespaces)")
    port = free_port()
    text = header(sim, tmp_path).replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"')
    config = write(tmp_path / "c.yaml", text + pods("qwen qwen-healthy"))
    script = (f"mount -t proc -o subset=pid proc /proc && test ! -e /proc/stat && "
              f"exec {sys.executable} -m probe run --config {config}")
    proc = subprocess.Popen([tool("unshare"), "--mount", "--pid", "--fork", "--kill-child=SIGTERM",
                             "sh", "-c", script], env=sim_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        page = wait_metrics(f"http://127.0.0.1:{port}/metrics", "process_resident_memory_bytes")
    finally:
        proc.kill()  # unshare dies; --kill-child hands the daemon a SIGTERM
        out, _ = proc.communicate(timeout=60)
    rss = next(float(line.split()[1]) for line in page.splitlines()
               if line.startswith("process_resident_memory_bytes "))
    assert 10e6 < rss < 2e9, out
    assert "process_open_fds " in page and "process_cpu_seconds_total " in page
