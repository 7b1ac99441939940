"""Meta-Patterns over a simulated week (weekhelpers): each seeded pattern said exactly once,
with evidence ``ledger verify`` and a reader can follow; nothing for the control endpoint or
for random single failures; replaying the week's ledger appends nothing."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from weekhelpers import (
    DAY,
    RACK_DOWN,
    RACKS,
    SLOWER_FROM,
    START,
    entry_count,
    replay_into,
    result,
    week,
)

from probe.cli import main
from probe.ledger.book import connect, read_entries
from probe.ledger.chain import LedgerEntry
from probe.ledger.cli import check
from probe.ledger.learning import append_learning, cited
from probe.outcome import Outcome

pytestmark = pytest.mark.xdist_group("week")

PATTERN_KINDS = ("recurring", "time_of_day", "regression", "model_changed", "context_changed",
                 "failed_together")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The week, replayed once into a fresh database: (database, LEARNING.md)."""
    where = tmp_path_factory.mktemp("week")
    db, learning = where / "probe.db", where / "LEARNING.md"
    replay_into(db, learning, week())
    return db, learning


def entries(db: Path) -> list[LedgerEntry]:
    conn = connect(db)
    try:
        return read_entries(conn)
    finally:
        conn.close()


def said(db: Path) -> list[tuple[str, str]]:
    return [(e.endpoint, e.event) for e in entries(db) if e.event.split("_ended")[0]
            in PATTERN_KINDS]


def test_each_seeded_pattern_is_said_exactly_once(replayed: tuple[Path, Path]) -> None:
    db, _ = replayed
    assert sorted(said(db)) == [("coldstart", "regression"), ("dc:EU-RO-1", "failed_together"),
                                ("nightly", "time_of_day"), ("slowing", "regression"),
                                ("swapper", "model_changed")]


def test_the_racks_failing_together_are_one_group_pattern(replayed: tuple[Path, Path]) -> None:
    """Three pods of one data centre down together on three nights (each at another hour):
    one pattern names the data centre, the pods and the nine incidents; none of the pods
    gets a recurring pattern of its own for the same incidents."""
    db, learning = replayed
    found = entries(db)
    by_id = {e.id: e for e in found}
    group = [e for e in found if e.event == "failed_together"]
    assert len(group) == 1
    text = group[0].pattern
    assert text.startswith("Endpoints on data centre EU-RO-1 went down together 3 times "
                           "within 7d: rack1, rack2, rack3 (")
    cited_ids = [int(n) for n in re.findall(r"#(\d+)", text)]
    downs = [e.id for e in found if e.endpoint in RACKS and e.event == "down"]
    assert len(downs) == 9 and cited_ids == downs[:8], "the nights' incidents until it held"
    assert [by_id[n].endpoint for n in cited_ids] == [*RACKS, *RACKS, "rack1", "rack2"]
    # said when the third night's second rack went down, not before
    assert group[0].evidence.observed_at == by_id[downs[7]].evidence.observed_at
    said_at = datetime.fromisoformat(group[0].evidence.observed_at or "")
    assert RACK_DOWN[2] < said_at < RACK_DOWN[2] + timedelta(minutes=20), "on the third night"
    assert not [e for e in found if e.endpoint in RACKS and e.event in PATTERN_KINDS]
    meta = learning.read_text().split("## Meta-Patterns")[1]
    assert group[0].id in cited(meta)


def test_a_pod_whose_latency_doubles_is_one_latency_pattern(
        replayed: tuple[Path, Path]) -> None:
    db, _ = replayed
    slow = [e for e in entries(db) if e.endpoint == "slowing" and e.event != "appeared"]
    assert [(e.event, e.evidence.check, e.evidence.outcome) for e in slow] == \
        [("regression", "models", "latency_s")]
    assert "probe latency regressed on models" in slow[0].pattern
    observed = slow[0].evidence.observed_at or ""
    assert SLOWER_FROM.isoformat() < observed < (SLOWER_FROM + DAY).isoformat()
    ratio = re.search(r"(\d\.\d)× its own baseline$", slow[0].pattern)
    assert ratio is not None and 1.5 <= float(ratio[1]) <= 2.0, slow[0].pattern


def test_the_patterns_cite_evidence_a_reader_can_follow(replayed: tuple[Path, Path]) -> None:
    db, learning = replayed
    found = {e.event: e for e in entries(db) if e.endpoint in ("nightly", "coldstart", "swapper")}
    by_id = {e.id: e for e in entries(db)}
    nightly = found["time_of_day"]
    assert "between 02:00 and 03:00 UTC: 3 of the last 7 days" in nightly.pattern
    cited_ids = [int(n) for n in re.findall(r"#(\d+)", nightly.pattern.split("ledger ")[1])]
    assert [(by_id[n].endpoint, by_id[n].event, by_id[n].evidence.outcome,
             (by_id[n].evidence.observed_at or "")[11:13]) for n in cited_ids] == \
        [("nightly", "down", "http_502", "02")] * 3
    cold = found["regression"]
    assert cold.evidence.observed_at is not None and cold.evidence.observed_at >= "2026-03-06"
    assert "cold starts (RunPod delayTime) regressed on roundtrip" in cold.pattern
    first, last = cold.evidence.first_row, cold.evidence.last_row
    assert first is not None and last is not None
    conn = sqlite3.connect(db)
    checks = {row[0] for row in conn.execute(
        "SELECT DISTINCT endpoint || '/' || check_name FROM results WHERE id BETWEEN ? AND ? "
        "AND check_name = 'roundtrip'", (first, last))}
    conn.close()
    assert checks == {"coldstart/roundtrip"}, "its result rows are the round trips it read"
    swap = found["model_changed"]
    assert "now serves meta-llama/Llama-3.1-8B instead of Qwen/Qwen2.5-7B-Instruct" in swap.pattern
    # LEARNING.md: each in its Meta-Patterns table, citing its entry; verify agrees
    text = learning.read_text()
    meta = text[text.index("## Meta-Patterns"):]
    others = [e.id for e in entries(db) if e.event in ("failed_together", "regression")
              and e.endpoint not in ("coldstart",)]
    assert len(others) == 2
    assert sorted(cited(meta)) == sorted([*(e.id for e in (nightly, cold, swap)), *others])
    assert check(db, learning).startswith(f"{len(by_id)} entries")


def test_no_pattern_for_the_control_endpoint_or_single_failures(
        replayed: tuple[Path, Path]) -> None:
    db, _ = replayed
    events = [(e.endpoint, e.event) for e in entries(db)]
    assert [e for e in events if e[0] == "control"] == [("control", "appeared")]
    assert ("swapper", "down") not in events and ("coldstart", "down") not in events
    assert not any(event == "recurring" for _, event in events), "the nightly pod is one pattern"


def test_replaying_the_week_appends_nothing(replayed: tuple[Path, Path]) -> None:
    """A restart reads the whole ledger again (the pattern watch is fed every entry, the
    LEARNING.md export runs): nothing new is said, twice over."""
    db, learning = replayed
    before, text = entry_count(db), learning.read_text()
    for _ in range(2):
        replay_into(db, learning)
        assert entry_count(db) == before
        assert append_learning(learning, entries(db)) == 0
        assert learning.read_text() == text


def test_the_same_week_replayed_twice_appends_nothing(
        replayed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same raw results replayed into the same database (stored again under new row ids,
    judged again from the start): every transition, lesson and pattern has the identity of
    one already in the ledger, so the ledger, LEARNING.md and `ledger verify` are as after
    the first replay."""
    db, learning = tmp_path / "probe.db", tmp_path / "LEARNING.md"
    for kept in replayed[0].parent.iterdir():
        shutil.copy(kept, tmp_path / kept.name)
    before, text = entries(db), learning.read_bytes()
    assert main(["ledger", "verify", "--db", str(db)]) == 0
    verified = capsys.readouterr().out
    results = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    for _ in range(2):
        replay_into(db, learning, week(), again=True)
        assert entries(db) == before
        assert learning.read_bytes() == text
        assert main(["ledger", "verify", "--db", str(db)]) == 0
        assert capsys.readouterr().out == verified
    again = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert again == 3 * results, "the raw results were stored again each time"


def test_alias_flips_make_a_recurring_incident_with_the_default_thresholds(
        tmp_path: Path) -> None:
    """One endpoint flips between healthy and 404 three times in a few minutes (an alias
    pointed back and forth): three incident rows, then one recurring-incident pattern."""
    db, learning = tmp_path / "probe.db", tmp_path / "LEARNING.md"
    flips = "OO" + "XXXOO" * 3  # O healthy, X 404: every 10 s, 34 s per flip
    at = [START + timedelta(seconds=10 * n) for n in range(len(flips))]
    replay_into(db, learning, [result("swapper", "models", t, Outcome.HTTP_404 if c == "X"
                                     else Outcome.OK) for c, t in zip(flips, at, strict=True)])
    found = entries(db)
    downs = [e.id for e in found if (e.endpoint, e.event) == ("swapper", "down")]
    assert len(downs) == 3
    recurring = [e for e in found if e.event == "recurring"]
    assert [(e.endpoint, e.evidence.outcome) for e in recurring] == [("swapper", "http_404")]
    assert "went down (404) 3 times within 7d" in recurring[0].pattern
    assert f"ledger #{downs[0]}, #{downs[1]}, #{downs[2]}" in recurring[0].pattern
    meta = learning.read_text().split("## Meta-Patterns")[1]
    assert list(cited(meta)) == [recurring[0].id]


def expected_digest() -> dict[str, Any]:
    """What the digest must say, computed from the recording itself (not the database)."""
    results: dict[str, list[int]] = {}
    tokens, jobs = 0, 0
    outages: list[tuple[str, float]] = []
    failing: dict[str, tuple[Any, int]] = {}  # endpoint -> (failing since, passes since)
    for r in week():
        usage = r.details.get("usage") or {}
        tokens += usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        jobs += "job_id" in r.details
        if r.check.startswith("prompt:"):
            continue
        counts = results.setdefault(r.endpoint, [0, 0])
        counts[0] += 1
        counts[1] += not r.ok
        if r.endpoint in ("nightly", *RACKS):  # incidents: first failure to the second pass
            since, passes = failing.get(r.endpoint, (None, 0))
            if not r.ok:
                failing[r.endpoint] = (since or r.started_at, 0)
            elif since is not None:
                failing[r.endpoint] = (since, passes + 1)
                if passes + 1 == 2:
                    outages.append((r.endpoint, (r.started_at - since).total_seconds()))
                    del failing[r.endpoint]
    return {"results": results, "tokens": tokens, "jobs": jobs, "outages": outages}


def test_the_digest_of_the_week_matches_the_recording(
        replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = replayed
    assert main(["learning", "--digest", "7d", "--json", "--db", str(db),
                 "--until", "2026-03-09"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = expected_digest()
    assert {name: [e["results"], e["failed"]] for name, e in got["endpoints"].items()} == \
        want["results"]
    nightly = got["endpoints"]["nightly"]
    assert nightly["availability"] == round(100 * (2016 - 28) / 2016, 3)
    assert [d["failed"] for d in nightly["by_day"]] == [4] * 7
    assert sorted((i["endpoint"], i["cause"], i["duration_s"]) for i in got["incidents"]) == \
        sorted((name, "http_502", s) for name, s in want["outages"])
    assert len(want["outages"]) == 7 + 9
    assert got["mttr_s"] == sum(s for _, s in want["outages"]) / 16 == 25 * 60
    assert sorted((p["endpoint"], p["kind"]) for p in got["patterns"]) == \
        [("coldstart", "regression"), ("dc:EU-RO-1", "failed_together"),
         ("nightly", "time_of_day"), ("slowing", "regression")]
    assert got["spent"]["tokens"] == want["tokens"] > 0
    assert got["spent"]["serverless_jobs"] == want["jobs"] == 7 * 48
    assert main(["learning", "--digest", "7d", "--db", str(db), "--until", "2026-03-09"]) == 0
    text = capsys.readouterr().out
    assert "| nightly | 98.61% (28 of 2016 failed) |" in text
    assert "## Incidents (16; mean time to recover 25m)" in text
    assert f"- tokens: {want['tokens']} (" in text and "- serverless jobs: 336" in text


def pattern_entries(db: Path) -> list[tuple[Any, ...]]:
    return [(e.endpoint, e.event, e.evidence.observed_at, e.evidence.first_row,
             e.evidence.last_row, e.pattern) for e in entries(db)
            if e.event.split("_ended")[0] in PATTERN_KINDS]


def test_a_restart_mid_week_keeps_the_baselines(replayed: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    """The same week with a restart on day 5 at 09:37 (mid-hour: after the latency and the
    cold starts doubled, before either pattern is said): the baselines' kept hours carry
    them over, so every pattern is said once, at the same moment, with the same evidence as
    without the restart. Without the kept hours the baselines would start again and say
    nothing before day 6."""
    db, learning = tmp_path / "probe.db", tmp_path / "LEARNING.md"
    cut = SLOWER_FROM + timedelta(hours=9, minutes=37)
    results = list(week())
    before, after = ([r for r in results if r.started_at < cut],
                     [r for r in results if r.started_at >= cut])
    replay_into(db, learning, before)
    said_before = pattern_entries(db)
    assert ("slowing", "regression") not in [p[:2] for p in said_before]
    conn = sqlite3.connect(db)
    kept = conn.execute("SELECT COUNT(*), COUNT(DISTINCT endpoint || check_name || metric), "
                        "MAX(LENGTH(samples)) FROM baseline_hours").fetchone()
    conn.close()
    series = 7  # latency of 6 pod models checks and the queue, ttft, decode rate, cold starts
    assert kept[1] >= series and kept[0] <= kept[1] * (4 * 24 + 10) and kept[2] < 400, kept
    replay_into(db, learning, after)
    # the same entries; their order in the chain (so the ledger ids a pattern cites) follows
    # the writer's batches, where the baselines' judgements are spread: each id cited is
    # compared by the entry it points to (endpoint, kind, cause, when observed, results)
    def said(db: Path) -> list[tuple[Any, ...]]:
        chain = {e.id: e for e in entries(db)}

        def pointed(match: re.Match[str]) -> str:
            e = chain[int(match[1])]
            v = e.evidence
            return (f"#[{e.endpoint} {e.event} {v.outcome} {v.observed_at} "
                    f"{v.first_row}-{v.last_row}]")

        return sorted((*p[:-1], re.sub(r"#(\d+)", pointed, p[-1]))
                      for p in pattern_entries(db))

    assert said(db) == said(replayed[0])
    assert any("#[rack1 down http_502 " in p[-1] for p in said(db)), "ids were compared"
    assert check(db, learning).startswith(f"{entry_count(db)} entries")


def test_the_week_replayed_from_the_end_state_appends_nothing(
        replayed: tuple[Path, Path], tmp_path: Path) -> None:
    """The same raw results replayed again into the database the first replay left, its
    end state restored (the verdicts kept at its close, the regressions it said hold, the
    baselines' kept hours) as a restart restores it: nothing new in the ledger or
    LEARNING.md."""
    db, learning = tmp_path / "probe.db", tmp_path / "LEARNING.md"
    for kept in replayed[0].parent.iterdir():
        shutil.copy(kept, tmp_path / kept.name)
    before, text = entries(db), learning.read_bytes()
    replay_into(db, learning, week())
    new = [(e.endpoint, e.event, e.evidence, e.pattern) for e in entries(db)[len(before):]]
    assert new == []
    assert learning.read_bytes() == text
