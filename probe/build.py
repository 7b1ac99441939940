"""Which build is running: the package version (``probe.__version__``, the one place it is
written; pyproject.toml reads it) and, when run from a git checkout, the commit. Shown by
``--version``, the status page, ``runpod_probe_build_info`` and the daemon's first log line,
so a bug report or an upgrade names the build."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from probe import __version__

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, when run from one
GIT_TIMEOUT_S = 2.0


INSTALLED = Path(__file__).with_name("COMMIT")  # written by setup.py's build from a checkout


@functools.cache
def commit() -> str:
    """The checkout's commit (12 hex digits, ``-dirty`` when files are modified): the one
    the package was built from (``pip install .`` in a checkout), or the one it runs from;
    "" when neither is known."""
    if not (CHECKOUT / ".git").exists():
        try:
            return INSTALLED.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""
    try:
        done = subprocess.run(["git", "-C", str(CHECKOUT), "describe", "--always",
                               "--abbrev=12", "--dirty", "--match=NO-TAGS"],
                              capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else ""


def build_name() -> str:
    """``0.1.0`` or ``0.1.0 (commit 0123456789ab)``."""
    found = commit()
    return f"{__version__} (commit {found})" if found else __version__
