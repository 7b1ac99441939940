"""The maintenance feature as the engine sees it: one window source, the config's windows
first, then the ones started on the command line, each only while it is on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import parse_config

from probe.maintenance import store
from probe.maintenance.plugin import FEATURE, windows

ENV = {"RUNPOD_API_KEY": "test-key-0000"}
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_the_config_windows_then_the_command_lines_while_each_is_on(tmp_path: Path) -> None:
    assert FEATURE.windows == (windows,) and FEATURE.startup == ()
    db = tmp_path / "probe.db"
    config = parse_config(
        "endpoints:\n  - {name: qwen-a, kind: pod, pod_id: a}\n"
        "  - {name: qwen-b, kind: pod, pod_id: b}\n"
        f'storage: {{path: "{db}"}}\n'
        "maintenance:\n  windows:\n    - {name: upgrade, endpoints: ['qwen-*'], reason: r, "
        "start: '2026-12-01 09:00', end: '2026-12-01 11:00'}\n", env=ENV)
    assert [w.name for w in windows(config, T0)] == ["upgrade"], "no database yet: config only"

    store.start(db, "qwen-b", T0 - timedelta(minutes=5), T0 + timedelta(hours=3), "disk", "ops")
    on = windows(config, T0)
    assert [(w.name, w.targets, w.origin) for w in on] == [
        ("upgrade", ("qwen-*",), "config"), ("manual #1", ("qwen-b",), "cli (ops)")]
    later = windows(config, T0 + timedelta(hours=2))
    assert [w.name for w in later] == ["manual #1"]
    assert windows(config, T0 + timedelta(hours=4)) == []
