"""The prober-facing ledger: config sync, redaction, restarts."""

from __future__ import annotations

from pathlib import Path

from helpers import parse_config
from ledgerhelpers import T0, Wired, result, sync

from probe.ledger.book import LedgerBook, connect, read_entries
from probe.outcome import Outcome
from probe.verdict import Hysteresis as LedgerSettings

ENV = {"RUNPOD_API_KEY": "test-key-0000"}


def config(tmp_path: Path, *pods: str) -> object:
    # Only the models check: the tests below say which other checks are planned.
    rows = "".join(f"  - {{name: {p}, kind: pod, pod_id: id-{p}, checks: [models]}}\n"
                   for p in pods)
    return parse_config(f"storage: {{path: {tmp_path / 'p.db'}}}\nendpoints:\n{rows}", env=ENV)


def written(tmp_path: Path, book: LedgerBook) -> list[tuple[str, str, str]]:
    book.close()
    return [(e.endpoint, e.event, e.pattern) for e in read_entries(connect(tmp_path / "p.db"))]


def test_config_sync_records_appeared_and_disappeared_once(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book)
    sync(ledger, config(tmp_path, "qwen", "deepseek"), now=T0)  # type: ignore[arg-type]
    sync(ledger, config(tmp_path, "qwen", "deepseek"), now=T0)  # type: ignore[arg-type]
    assert written(tmp_path, book) == [
        ("qwen", "appeared", "RunPod pod qwen (id-qwen) added to the probed fleet"),
        ("deepseek", "appeared", "RunPod pod deepseek (id-deepseek) added to the probed fleet")]
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)  # a restart, one pod removed
    ledger = Wired(book)
    sync(ledger, config(tmp_path, "qwen"), now=T0)  # type: ignore[arg-type]
    assert written(tmp_path, book)[2:] == [
        ("deepseek", "disappeared",
         "RunPod pod deepseek (id-deepseek) removed from the config — no longer probed")]


def test_patterns_and_urls_are_redacted(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book, LedgerSettings(down_after=1),
                   redact=lambda text: text.replace("sk-secret", "***"))
    sync(ledger, config(tmp_path, "qwen"), now=T0)
    ledger.observe(result(Outcome.HTTP_5XX, message="upstream said: key sk-secret invalid"), 1)
    ((_, _, pattern),) = written(tmp_path, book)[1:]  # after "appeared"
    assert "sk-secret" not in pattern and "key *** invalid" in pattern
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert files and not any(b"sk-secret" in p.read_bytes() for p in files)
    assert any(b"key *** invalid" in p.read_bytes() for p in files), "the check can fail"


def test_settings_from_a_reload_apply(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book, LedgerSettings(down_after=3))
    sync(ledger, config(tmp_path, "qwen"), LedgerSettings(down_after=1), now=T0)  # type: ignore[arg-type]
    assert [d.event for d in ledger.observe(result(Outcome.HTTP_404), 1)] == ["down"]
    book.close()


def test_checks_no_longer_planned_stop_holding_recovery_back(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book, LedgerSettings(down_after=1, up_after=1))
    sync(ledger, config(tmp_path, "qwen"), now=T0)  # type: ignore[arg-type]
    ledger.observe(result(Outcome.ENGINE_DEAD, check="health"), 1)
    ledger.observe(result(check="prompt:old", at=1), 2)
    assert ledger.states["qwen"].state == "down"
    sync(ledger, config(tmp_path, "qwen"), now=T0)  # type: ignore[arg-type]
    assert set(ledger.states["qwen"].availability.streaks) == set()
    assert ledger.states["qwen"].prompts == {}
    assert [d.event for d in ledger.observe(result(at=2), 3)] == ["recovered"]
    book.close()


def test_a_serverless_404_is_an_unknown_endpoint_id_not_a_stopped_pod(tmp_path: Path) -> None:
    book = LedgerBook(tmp_path / "p.db", batch_interval_s=0.01)
    ledger = Wired(book, LedgerSettings(down_after=1))
    text = (f"runpod: {{api_key_env: RUNPOD_API_KEY}}\nstorage: {{path: {tmp_path / 'p.db'}}}\n"
            "endpoints:\n  - {name: queue, kind: serverless, endpoint_id: vllm-abc, "
            "checks: [queue]}\n")
    sync(ledger, parse_config(text, env=ENV), now=T0)
    ledger.observe(result(Outcome.HTTP_404, check="queue", endpoint="queue"), 1)
    ((endpoint, event, pattern),) = written(tmp_path, book)[1:]  # after "appeared"
    assert (endpoint, event) == ("queue", "down")
    assert "RunPod knows no serverless endpoint with this id" in pattern
    assert "pod stopped" not in pattern
