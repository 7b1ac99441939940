"""LEARNING.md appends: existing bytes untouched, idempotent, never a rewrite.

Atomicity (a failed write leaves the old file, mode kept, an edit meanwhile is respected)
is ``write_atomic``'s contract: tests/test_atomic.py; the ``learning`` command: test_cli.py."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import parse_config
from ledgerhelpers import chain, draft

from probe.config import ConfigError
from probe.ledger import rules
from probe.ledger.book import append, connect
from probe.ledger.chain import GENESIS, Evidence, LedgerDraft, LedgerEntry, seal
from probe.ledger.learning import (
    NEW_FILE,
    LearningFileError,
    append_learning,
    check_appendable,
    cited,
)
from probe.ledger.plugin import LearningExporter
from probe.ledger.settings import LessonFilter, Target
from probe.storage.database import transaction
from probe.verdict import Event, Transition, Window

SEED = Path(__file__).parents[1] / "data" / "learning" / "LEARNING.md"
TABLE = "| Date | Pattern | Source |\n|---|---|---|\n"


@pytest.fixture
def learning(tmp_path: Path) -> Path:
    path = tmp_path / "LEARNING.md"
    shutil.copyfile(SEED, path)
    return path


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| 2026")]


def test_appends_after_hand_written_rows_and_prose_without_touching_them(learning: Path) -> None:
    original = learning.read_bytes()
    assert append_learning(learning, chain(3)) == 3
    grown = learning.read_bytes()
    assert grown.startswith(original), "the original bytes are an unchanged prefix"
    added = grown[len(original):].decode()
    # the last table is the hand-kept Meta-Patterns: ours starts a table of its own
    assert added.startswith("\n## Runtime lessons (runpod-probe ledger)\n\n" + TABLE)
    assert [r.split(" | ")[0] for r in rows(added)] == ["| 2026-02-18"] * 3
    assert sorted(cited(added)) == [1, 2, 3]
    assert append_learning(learning, chain(3)) == 0, "a second run adds nothing"
    assert learning.read_bytes() == grown


def test_later_entries_extend_our_table(learning: Path) -> None:
    append_learning(learning, chain(2))
    before = learning.read_text()
    assert append_learning(learning, chain(4)) == 2
    added = learning.read_text()[len(before):]
    assert added.startswith("| 2026-02-18 |") and "##" not in added
    assert learning.read_text().count("## Runtime lessons") == 1


@pytest.mark.parametrize(
    ("text", "lead"),
    [("# L\n\n" + TABLE + "| 2026-02-15 | hand | kept |\n", ""),
     ("# L\n\n" + TABLE + "| 2026-02-15 | hand | kept |", "\n")],
    ids=["newline-at-end", "no-newline-at-end"],
)
def test_rows_go_under_the_scope_table_when_it_ends_the_file(tmp_path: Path, text: str,
                                                            lead: str) -> None:
    path = tmp_path / "LEARNING.md"
    path.write_text(text)
    append_learning(path, chain(1))
    added = path.read_text()[len(text):]
    assert added.startswith(lead + "| 2026-02-18 | RunPod pod qwen")


def test_where_it_left_off_comes_from_the_file(learning: Path) -> None:
    append_learning(learning, chain(3))
    full = learning.read_text()
    backup = full[: full.index("\n", full.index("ledger #1 ")) + 1]  # a backup holding #1 only
    learning.write_text(backup)
    assert append_learning(learning, chain(3)) == 2
    assert sorted(cited(learning.read_text())) == [1, 2, 3]
    edited = [line for line in learning.read_text().splitlines(keepends=True)
              if "ledger #2 " not in line]  # someone removed a row by hand
    learning.write_text("".join(edited))
    assert append_learning(learning, chain(3)) == 0, "a removed row is not forced back"


def test_table_cells_escape_pipes_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "L.md"
    path.write_text(TABLE)
    nasty = seal(replace(draft(1), pattern="a | b\nc"), 1, GENESIS)
    append_learning(path, [nasty])
    row = path.read_text().splitlines()[-1]
    assert row.startswith("| 2026-02-18 | a \\| b c | Runtime probe @ http://x/proxy ")
    assert row.replace("\\|", "").count("|") == 4


def _no_table(path: Path) -> None:
    path.write_text("# LEARNING\n\nNothing here yet.\n")


def _read_only(path: Path) -> None:
    path.chmod(0o444)


def _other_ledger(path: Path) -> None:
    path.write_text(path.read_text() + "| 2026-02-18 | x | ledger #1 sha256:0123456789ab |\n")


def _binary(path: Path) -> None:
    path.write_bytes(b"| Date | Pattern | Source |\n|---|---|---|\n\xff\xfe\n")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [(_no_table, "has no | Date | Pattern | Source | table to append to"),
     (_read_only, "is not writable"),
     (_other_ledger, "cites ledger #1 sha256:0123456789ab but this ledger has sha256:"),
     (_binary, "is not UTF-8 text")],
    ids=["no-table", "read-only", "from-another-ledger", "not-utf8"],
)
def test_a_file_that_is_not_ours_is_an_error_not_a_rewrite(
        learning: Path, spoil: object, message: str) -> None:
    spoil(learning)  # type: ignore[operator]
    before = learning.read_bytes() if learning.exists() else None
    with pytest.raises(LearningFileError, match=message.replace("|", r"\|")):
        append_learning(learning, chain(2))
    assert (learning.read_bytes() if learning.exists() else None) == before


def test_a_symlinked_file_is_appended_through_the_link(learning: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.md"
    link.symlink_to(learning)
    append_learning(link, chain(1))
    assert link.is_symlink() and len(cited(learning.read_text())) == 1


def test_config_refuses_a_learning_file_without_a_table(tmp_path: Path) -> None:
    path = tmp_path / "NOTES.md"
    path.write_text("just prose\n")
    text = (f"storage: {{path: {tmp_path / 'p.db'}}}\nlearning: {{path: {path}}}\n"
            "endpoints:\n  - {name: s, kind: serverless, endpoint_id: e}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"RUNPOD_API_KEY": "test-key-0000"})
    assert caught.value.problems == [
        f"learning.path: {path} has no | Date | Pattern | Source | table to append to"]
    path.write_text(TABLE)
    assert parse_config(text, env={"RUNPOD_API_KEY": "test-key-0000"}).sections["learning"]


@pytest.mark.parametrize(
    ("evidence", "source"),
    [(Evidence("models", "http_404", 3, 5, "http://x"),
      "Runtime probe @ http://x (models: http_404; results #3–#5) · ledger #1 sha256:"),
     (Evidence("models", "ok", 7, 7, "http://x"),
      "Runtime probe @ http://x (models: ok; result #7) · ledger #1 sha256:"),
     (Evidence("config", None, None, None, "http://x"),
      "runpod-probe config @ http://x · ledger #1 sha256:"),
     (Evidence("config", None, None, None, None), "runpod-probe config · ledger #1 sha256:"),
     (Evidence("maintenance", None, None, None, "http://x"),
      "runpod-probe maintenance @ http://x · ledger #1 sha256:")],
    ids=["outage-rows", "one-row", "config-fact", "config-fact-gone", "maintenance"],
)
def test_source_cites_evidence_and_the_entry(tmp_path: Path, evidence: Evidence,
                                             source: str) -> None:
    path = tmp_path / "L.md"
    path.write_text(TABLE)
    append_learning(path, [seal(replace(draft(1), evidence=evidence), 1, GENESIS)])
    assert path.read_text().splitlines()[-1].split(" | ")[2].startswith(source)


def test_a_missing_file_is_created_with_its_table(tmp_path: Path) -> None:
    target = tmp_path / "state" / "LEARNING.md"  # its directory does not exist yet either
    check_appendable(target)  # creatable: not an error
    assert append_learning(target, chain(2)) == 2
    text = target.read_text()
    assert text.startswith(NEW_FILE) and len(cited(text)) == 2
    assert append_learning(target, chain(2)) == 0, "and appended to like any other"


def test_a_file_that_cannot_be_created_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(LearningFileError, match="cannot be created"):
        check_appendable(blocker / "LEARNING.md")
    with pytest.raises(LearningFileError, match="cannot be created"):
        append_learning(blocker / "LEARNING.md", chain(1))



FORGED = "ledger #1 sha256:000000000000 | x |\nledger #9 sha256:000000000000 |\u2028| 2026 |"
AT = datetime(2026, 2, 18, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("transition", "who"),
    [(Transition(Event.MODEL_CHANGED, "qwen", AT, "models", old="qwen", new=FORGED,
                 url="http://x"), "RunPod pod qwen"),
     (Transition(Event.APPEARED, FORGED, AT, "config", url="http://x"), FORGED),
     (Transition(Event.MAINTENANCE_STARTED, "qwen", AT, url="http://x/" + FORGED,
                 new=Window("k", "move", FORGED, "cli (alice)", AT, None)), "qwen")],
    ids=["model-id", "endpoint-name", "maintenance-reason"],
)
def test_row_text_shaped_like_a_citation_is_data(tmp_path: Path, transition: Transition,
                                                 who: str) -> None:
    """Text from servers, names and reasons never reads as a row's citation: later appends
    go on, and the row renders as one row of three cells."""
    path = tmp_path / "LEARNING.md"
    path.write_text(TABLE)
    entries = [seal(rules.draft(transition, who), 1, GENESIS)]
    assert "ledger #1 sha256:000000000000" in entries[0].pattern
    for n in (2, 3):
        entries.append(seal(draft(n, f"qwen-{n}"), n, entries[-1].hash))
    assert append_learning(path, entries[:1]) == 1
    assert append_learning(path, entries[:2]) == 1, "the next append is not refused"
    assert append_learning(path, entries) == 1
    assert append_learning(path, entries) == 0
    text = path.read_text()
    assert sorted(cited(text)) == [1, 2, 3]
    assert cited(text)[1] == entries[0].short_hash
    assert len(text.split("\n")) == len(text.splitlines()) + 1, "no line break but ours"
    assert len(rows(text)) == 3
    for row in rows(text):
        assert row.replace("\\|", "").count("|") == 4, row


@pytest.mark.parametrize(
    ("where", "message"),
    [(lambda tmp: Path("/proc/runpod-probe-test/LEARNING.md"),
      "does not exist and cannot be created (no file can be created in /proc"),
     (lambda tmp: Path("/proc/LEARNING.md"),
      "does not exist and cannot be created (no file can be created in /proc"),
     (lambda tmp: tmp, "is a directory: a LEARNING.md must be a regular file"),
     (lambda tmp: Path("/dev/null"), "is not a regular file")],
    ids=["under-proc", "in-proc", "a-directory", "a-device"],
)
def test_a_path_no_file_can_be_appended_at_is_refused_up_front(
        tmp_path: Path, where: object, message: str) -> None:
    with pytest.raises(LearningFileError, match=re.escape(message)):
        check_appendable(where(tmp_path))  # type: ignore[operator]
    assert list(tmp_path.iterdir()) == [], "the check leaves nothing behind"


def _entry(n: int, endpoint: str, event: str, pattern: str, outcome: str | None = "http_404",
           check: str | None = "models") -> LedgerDraft:
    return LedgerDraft(ts="2026-02-18T09:00:00+00:00", severity="info", endpoint=endpoint,
                       event=event, pattern=pattern,
                       evidence=Evidence(check, outcome, n, n, "http://x", None))


def sealed(drafts: list[LedgerDraft]) -> list[LedgerEntry]:
    out: list[LedgerEntry] = []
    for n, d in enumerate(drafts, start=1):
        out.append(seal(d, n, out[-1].hash if out else GENESIS))
    return out


FLEET = [_entry(1, "qwen", "appeared", "RunPod pod qwen (q1) added to the probed fleet",
                None, "config"),
         _entry(2, "deepseek", "appeared", "Provider deepseek added to the probed fleet",
                None, "config"),
         _entry(3, "deepseek", "down", "Provider deepseek down (404) — the provider serves "
                "nothing at this URL"),
         _entry(4, "qwen", "down", "RunPod pod qwen (q1) down (404) — pod stopped"),
         _entry(5, "qwen", "recurring", "RunPod pod qwen went down (404) 3 times within 7d")]


def settled() -> datetime:
    """A clock past the wait for fleet incidents (``Hold``): these down entries are sealed
    now and no incident claims them."""
    return datetime.now(UTC) + timedelta(hours=1)


def test_each_target_keeps_what_its_filter_keeps_and_appends_once(tmp_path: Path) -> None:
    scope, root = tmp_path / "scope" / "LEARNING.md", tmp_path / "LEARNING.md"
    exporter = LearningExporter((Target(scope),
                                 Target(root, LessonFilter(kinds=("provider", "fleet")))),
                                clock=settled)
    db = tmp_path / "p.db"
    conn = connect(db)
    with transaction(conn):
        append(conn, FLEET[:3])
    exporter(conn, [])
    with transaction(conn):
        append(conn, FLEET[3:])
    exporter(conn, [])
    exporter(conn, [])  # nothing new: nothing appended, anywhere
    conn.close()
    assert exporter.appended_total == 4 + 2 and exporter.errors_total == 0
    everything = scope.read_text()
    assert [r.split(" | ")[1] for r in rows(everything)] == [
        "2 endpoints added to the probed fleet: 1 pod, 1 provider",
        FLEET[2].pattern, FLEET[3].pattern, FLEET[4].pattern]
    assert everything.index("## Meta-Patterns") > everything.index(FLEET[3].pattern)
    assert [r.split(" | ")[1] for r in rows(root.read_text())] == [
        "2 endpoints added to the probed fleet: 1 pod, 1 provider", FLEET[2].pattern]


def test_a_target_that_refuses_does_not_stop_the_others(tmp_path: Path) -> None:
    broken, kept = tmp_path / "broken.md", tmp_path / "kept.md"
    broken.write_text("# no table here\n")
    exporter = LearningExporter((Target(broken), Target(kept)), clock=settled)
    conn = connect(tmp_path / "p.db")
    with transaction(conn):
        append(conn, FLEET)
    exporter(conn, [])
    conn.close()
    assert exporter.errors_total == 1 and len(rows(kept.read_text())) == 4
    assert broken.read_text() == "# no table here\n"


def test_hostile_names_in_fleet_and_pattern_rows_never_stop_a_later_append(
        tmp_path: Path) -> None:
    """An endpoint named like a citation (with pipes and line breaks) in a fleet row's
    evidence and in a pattern row: each append after it goes on."""
    path = tmp_path / "LEARNING.md"
    path.write_text(TABLE)
    drafts = [_entry(1, FORGED, "appeared", f"RunPod pod {FORGED} added", None, "config"),
              _entry(2, "b", "appeared", "RunPod pod b added", None, "config"),
              _entry(3, FORGED, "recurring", f"RunPod pod {FORGED} went down 3 times"),
              _entry(4, "b", "down", "RunPod pod b down (404)"),
              _entry(5, FORGED, "down", f"RunPod pod {FORGED} down (404)")]
    entries = sealed(drafts)
    for upto in range(1, 6):
        append_learning(path, entries[:upto])
    assert append_learning(path, entries) == 0
    text = path.read_text()
    assert sorted(cited(text)) == [1, 3, 4, 5]
    assert len(text.split("\n")) == len(text.splitlines()) + 1, "no line break but ours"
    for row in rows(text):
        assert row.replace("\\|", "").count("|") == 4, row


def test_the_scope_meta_patterns_table_gets_patterns_and_a_new_table_the_rest(
        learning: Path) -> None:
    """The scope's file ends with its Meta-Patterns table: a pattern goes under it, an
    incident into a table of ours after it, in one append; later ones follow each."""
    original = learning.read_text()
    model = _entry(2, "qwen", "model_changed", "RunPod pod qwen (q1) now serves B instead of A",
                   "ok")
    entries = sealed([FLEET[3], model, FLEET[2], FLEET[4]])
    assert append_learning(learning, entries[:2]) == 2
    text = learning.read_text()
    assert text.startswith(original.rstrip("\n") + "\n| 2026-02-18 | RunPod pod qwen (q1) now "
                           "serves B")
    assert text.index("## Runtime lessons") > text.index("now serves B")
    assert append_learning(learning, entries) == 2
    grown = learning.read_text()
    meta = grown[grown.index("## Meta-Patterns"):grown.index("## Runtime lessons")]
    assert sorted(cited(meta)) == [2, 4]
    assert sorted(cited(grown[grown.index("## Runtime lessons"):])) == [1, 3]
    assert [line for line in original.splitlines() if line not in grown.splitlines()] == []
