"""Log lines as each reader wants them: journald's priorities (no timestamp of our own) when
stderr is the journal's stream, one JSON object a line for a shipper, plain text otherwise."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probe.logs import JournalFormatter, JsonFormatter, priority, to_journal


def record(level: int, message: str = "pod down") -> logging.LogRecord:
    return logging.LogRecord("probe.x", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(("level", "expected"), [
    (logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3),
    (logging.CRITICAL, 2), (logging.WARNING + 5, 4)], ids=str)
def test_levels_map_to_syslog_priorities(level: int, expected: int) -> None:
    assert priority(level) == expected


def test_a_journal_line_has_its_priority_on_every_line_and_no_timestamp() -> None:
    assert JournalFormatter().format(record(logging.ERROR, "a\nb")) == "<3>probe.x: a\n<3>b"


def test_a_json_line_is_one_object() -> None:
    line = JsonFormatter().format(record(logging.WARNING))
    assert "\n" not in line
    data = json.loads(line)
    assert (data["level"], data["logger"], data["message"]) == ("WARNING", "probe.x", "pod down")
    assert data["ts"].endswith("+00:00")


def test_the_journal_is_recognised_by_its_device_and_inode(tmp_path: Path) -> None:
    with (tmp_path / "a").open("w") as stream, (tmp_path / "b").open("w") as other:
        found = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}"}
        assert to_journal(env, stream)
        assert not to_journal(env, other), "stderr redirected elsewhere: not the journal"
        assert not to_journal({}, stream) and not to_journal({"JOURNAL_STREAM": "x"}, stream)


def test_log_format_json_on_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{path: {tmp_path / 'p.db'}}}\n"
                      "endpoints:\n  - {name: p, kind: pod, pod_id: x}\n")
    done = subprocess.run([sys.executable, "-m", "probe", "ledger", "list", "--config",
                           str(config), "--log-format", "json", "--log-level", "debug"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"],
                               "CREDENTIALS_DIRECTORY": str(tmp_path / "none")})
    lines = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines, done.stderr
    assert all(json.loads(line)["logger"] for line in lines)
