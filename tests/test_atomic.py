"""``write_atomic``: old bytes or new, never a mix, no temporary file left, the rename made
durable. Units of the function itself, then contract tests running the same scenarios over
each of its users (LEARNING.md appends, discovery's remembered listing)."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from probe.atomic import Changed, write_atomic
from probe.discovery import memory
from probe.discovery.listing import Listed
from probe.ledger import learning
from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.ledger.learning import append_learning, cited

OLD, NEW = b"old bytes\n" * 100, b"new bytes, longer than the old ones\n" * 100


def crash(*_args: object) -> None:
    raise OSError("simulated crash")


class _HalfWriter:
    """A file that takes half of what it is given, then reports a full disk."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __enter__(self) -> _HalfWriter:
        self.real.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.__exit__(*exc)

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", crash)


def _fail_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", crash)


def _fill_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _HalfWriter(real(fd, mode)))


FAILURES = pytest.mark.parametrize(
    "fail", [_fail_fsync, _fail_replace, _fill_disk],
    ids=["fsync-of-the-new-bytes", "rename", "disk-full-mid-write"])


def is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def record_fsyncs(monkeypatch: pytest.MonkeyPatch, target: Path) -> list[tuple[str, bytes]]:
    """Every fsync, as (file or dir, the target's bytes at that moment)."""
    calls: list[tuple[str, bytes]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(("dir" if is_dir(fd) else "file",
                      target.read_bytes() if target.exists() else b""))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


# -- write_atomic itself ------------------------------------------------------------------
@pytest.mark.parametrize("existed", [True, False], ids=["replaces", "creates"])
def test_writes_the_new_bytes_and_leaves_no_temporary_file(tmp_path: Path,
                                                           existed: bool) -> None:
    target = tmp_path / "t.bin"
    if existed:
        target.write_bytes(OLD)
    write_atomic(target, NEW)
    assert target.read_bytes() == NEW
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


@FAILURES
def test_a_write_failing_midway_leaves_the_old_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: Callable[..., None]) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(OLD)
    fail(monkeypatch)
    with pytest.raises(OSError):
        write_atomic(target, NEW)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"], "no temporary file is left"


@FAILURES
def test_a_failed_first_write_leaves_no_file_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: Callable[..., None]) -> None:
    target = tmp_path / "t.bin"
    fail(monkeypatch)
    with pytest.raises(OSError):
        write_atomic(target, NEW)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_the_directory_is_fsynced_after_the_rename(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(OLD)
    calls = record_fsyncs(monkeypatch, target)
    write_atomic(target, NEW)
    # the new bytes are on disk before the rename; the rename is on disk before we return
    assert calls == [("file", OLD), ("dir", NEW)]


def test_a_failing_directory_fsync_is_reported_with_the_new_bytes_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(OLD)
    real = os.fsync

    def fsync(fd: int) -> None:
        if is_dir(fd):
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(target, NEW)
    assert target.read_bytes() == NEW, "renamed already: new bytes, never a mix"
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644], ids=oct)
def test_mode_is_set_on_the_new_file(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(OLD)
    write_atomic(target, NEW, mode=mode)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def _grown(target: Path) -> None:
    with target.open("ab") as out:
        out.write(b"an edit\n")


def _same_size_later(target: Path) -> None:
    before = target.stat()
    target.write_bytes(OLD.upper())
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


def _untouched(target: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("edit", "refused"),
    [(_grown, True), (_same_size_later, True), (_untouched, False)],
    ids=["grown", "same-size-later-mtime", "untouched"])
def test_unchanged_since_refuses_when_the_file_changed(tmp_path: Path, edit: Callable[..., None],
                                                       refused: bool) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(OLD)
    seen = target.stat()
    edit(target)
    edited = target.read_bytes()
    if refused:
        with pytest.raises(Changed):
            write_atomic(target, NEW, unchanged_since=seen)
        assert target.read_bytes() == edited, "their edit is kept"
    else:
        write_atomic(target, NEW, unchanged_since=seen)
        assert target.read_bytes() == NEW
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


# -- every user of write_atomic -----------------------------------------------------------
TABLE = "# LEARNING\n\n| Date | Pattern | Source |\n|---|---|---|\n"


def entries(count: int) -> list[LedgerEntry]:
    """Incidents of ``count`` endpoints, one each (each a row of LEARNING.md)."""
    out: list[LedgerEntry] = []
    for n in range(1, count + 1):
        draft = LedgerDraft(ts=f"2026-02-18T09:{n:02d}:00+00:00", severity="critical",
                            endpoint=f"qwen-{n}", event="down",
                            pattern=f"qwen-{n} down (404), case {n}",
                            evidence=Evidence("models", "http_404", n, n, "http://x/proxy"))
        out.append(seal(draft, n, out[-1].hash if out else GENESIS))
    return out


LISTING = {"pod": (Listed("pod", "p1", "alpha", "RUNNING", None, ("8000/http",)),),
           "serverless": (Listed("serverless", "e1", "queue", None, "QUEUE"),)}


@dataclass(frozen=True)
class User:
    """How the contract drives one user of ``write_atomic``: make its file with old
    content, then update it (the write under test)."""

    prepare: Callable[[Path], Path]  # directory -> the file, holding its old content
    update: Callable[[Path], object]
    raises: bool  # a failure reaches the caller (else it is logged and the caller goes on)
    logged: str  # what the log says when a failure does not reach the caller


def _learning_file(directory: Path) -> Path:
    path = directory / "LEARNING.md"
    path.write_text(TABLE)
    append_learning(path, entries(1))
    return path


def _memory_file(directory: Path) -> Path:
    path = directory / "probe.db.discovery.json"
    memory.save(path, {"pod": LISTING["pod"]})
    return path


LEARNING_MD = User(_learning_file, lambda path: append_learning(path, entries(3)),
                   raises=True, logged="")
DISCOVERY_MEMORY = User(_memory_file, lambda path: memory.save(path, LISTING), raises=False,
                        logged="cannot remember the discovery listing")
USERS = pytest.mark.parametrize("user", [LEARNING_MD, DISCOVERY_MEMORY],
                                ids=["learning-md", "discovery-memory"])


def clean_update(user: User, directory: Path) -> bytes:
    """What the update writes when nothing fails, on a twin of the file in ``directory``."""
    directory.mkdir()
    path = user.prepare(directory)
    user.update(path)
    return path.read_bytes()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


@USERS
@FAILURES
def test_a_failed_update_leaves_the_old_file_and_a_retry_completes_it(
        user: User, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, fail: Callable[..., None]) -> None:
    target = user.prepare(home)
    old = target.read_bytes()
    fail(monkeypatch)
    if user.raises:
        with pytest.raises(OSError):
            user.update(target)
    else:
        with caplog.at_level(logging.ERROR):
            user.update(target)
        assert user.logged in caplog.text
    monkeypatch.undo()
    assert target.read_bytes() == old
    assert [p.name for p in home.iterdir()] == [target.name], "no temporary file is left"
    user.update(target)
    assert target.read_bytes() == clean_update(user, tmp_path / "twin")


@USERS
def test_an_update_fsyncs_the_directory_after_the_rename(
        user: User, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = user.prepare(home)
    old = target.read_bytes()
    calls = record_fsyncs(monkeypatch, target)
    user.update(target)
    assert [kind for kind, _ in calls] == ["file", "dir"]
    assert calls[0][1] == old and calls[1][1] == target.read_bytes() != old


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664], ids=oct)
def test_learning_md_keeps_its_mode(home: Path, mode: int) -> None:
    path = _learning_file(home)
    path.chmod(mode)
    assert append_learning(path, entries(3)) == 2
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_learning_md_edited_during_an_append_keeps_the_edit_and_appends_once(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _learning_file(home)
    real_chmod = os.chmod
    edits: list[int] = []

    def chmod_then_edit(target: Any, mode: int) -> None:
        real_chmod(target, mode)
        if not edits:  # someone saves the file between our read and our rename
            edits.append(1)
            with path.open("a") as out:
                out.write("| 2026-02-19 | a hand-written lesson | notes |\n")

    monkeypatch.setattr(os, "chmod", chmod_then_edit)
    assert append_learning(path, entries(3)) == 2
    text = path.read_text()
    assert "a hand-written lesson" in text
    assert sorted(cited(text)) == [1, 2, 3] and text.count("ledger #2 ") == 1


def test_learning_md_that_keeps_changing_is_refused(home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = _learning_file(home)
    before = path.read_bytes()

    def always_changed(*_args: object, **_kwargs: object) -> None:
        raise learning.Changed(str(path))

    monkeypatch.setattr(learning, "write_atomic", always_changed)
    with pytest.raises(learning.LearningFileError, match="keeps changing"):
        append_learning(path, entries(3))
    assert path.read_bytes() == before
