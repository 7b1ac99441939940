"""Every transition reads as one sentence in the style of the scope's LEARNING rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import endpoint
from ledgerhelpers import T0

from probe.ledger.rules import draft, phrase, subject
from probe.outcome import Outcome
from probe.verdict import AFTER_WINDOW, Event, Maintenance, Transition, Window

POD = "RunPod pod deepseek (g0aelua3ct8eb4)"
WINDOW = Window("cli:3", "manual #3", "moving to an H100", "cli (alice)", T0,
                T0 + timedelta(hours=2), ("deepseek",))
ENDED = Maintenance("cli:3", "manual #3", "moving to an H100", "cli (alice)", T0.isoformat(),
                    None, results=9, failed=4)


def t(event: Event, outcome: str | None = "http_404", minutes: float = 0, **kw: object) -> \
        Transition:
    since = T0 if minutes else None
    return Transition(event, "deepseek", T0 + timedelta(minutes=minutes), "models", outcome,
                      since=since, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("transition", "severity", "sentence"),
    [(t(Event.DOWN), "critical",
      f"{POD} down (404) — pod stopped or destroyed, or port not exposed"),
     (t(Event.PERSISTENT, minutes=45), "critical",
      f"{POD} persistently down (404) for 45m — needs manual restart from the RunPod "
      "dashboard; not fixable via API"),
     (t(Event.RECOVERED, minutes=90), "info", f"{POD} recovered after 1h30m down (404)"),
     (t(Event.DOWN, "crash_looping", message="7 requests queued but 0/1 running, 1 unhealthy "
        "worker"), "critical",
      f"{POD} workers crash-looping — 7 requests queued but 0/1 running, 1 unhealthy worker"),
     (t(Event.RECOVERED, "queue_stalled", minutes=12), "info",
      f"{POD} serverless queue drained after 12m stalled"),
     (t(Event.DOWN, "unauthorized", http_status=403), "critical",
      f"{POD} API key lacks permission — models returns 403"),
     (t(Event.DOWN, "initializing_too_long", message="initializing for 8m"), "warning",
      f"{POD} cold start over budget — initializing for 8m"),
     (t(Event.CONTEXT_CHANGED, old=8192, new=32768), "info",
      f"{POD} context window upgraded from 8192 to 32768 — confirmed via /v1/models "
      "max_model_len"),
     (t(Event.CONTEXT_CHANGED, old=32768, new=8192), "warning",
      f"{POD} context window reduced from 32768 to 8192 — confirmed via /v1/models "
      "max_model_len"),
     (t(Event.MODEL_CHANGED, old="a/b", new="c/d"), "warning",
      f"{POD} now serves c/d instead of a/b — confirmed via /v1/models"),
     (t(Event.APPEARED, None), "info", f"{POD} added to the probed fleet"),
     (t(Event.DISAPPEARED, None), "info", f"{POD} removed from the config — no longer probed"),
     (t(Event.MAINTENANCE_STARTED, None, new=WINDOW), "info",
      f"{POD} in maintenance (manual #3: moving to an H100; declared by cli (alice)) until "
      "2026-02-18T11:00+00:00 — checks go on, alerts are silenced"),
     (t(Event.MAINTENANCE_ENDED, None, minutes=75, old=ENDED, new="came back healthy"), "info",
      f"{POD} maintenance manual #3 ended after 1h15m: came back healthy (9 results, 4 "
      "failing, during the window)"),
     (t(Event.MAINTENANCE_ENDED, None, minutes=75, old=ENDED,
        new="still failing at the end (models: http_404)"), "warning",
      f"{POD} maintenance manual #3 ended after 1h15m: still failing at the end (models: "
      "http_404) (9 results, 4 failing, during the window)"),
     (t(Event.DOWN, old=AFTER_WINDOW), "critical",
      f"{POD} down (404) — pod stopped or destroyed, or port not exposed — still failing when "
      "its maintenance window ended")],
    ids=["down-404", "persistent-404", "recovered", "crash-loop", "queue-drained",
         "key-lacks-permission", "cold-start-over-budget", "context-upgraded",
         "context-reduced", "model-changed", "appeared", "disappeared", "maintenance-started",
         "maintenance-ended-healthy", "maintenance-ended-failing", "down-after-window"],
)
def test_sentences(transition: Transition, severity: str, sentence: str) -> None:
    assert phrase(transition, POD) == (severity, sentence)


def test_prompt_sentences_name_the_prompt() -> None:
    failing = Transition(Event.PROMPT_FAILING, "q", T0, "prompt:arithmetic",
                         "expectation_failed", message='answered "5", expected "4"')
    assert phrase(failing, "X")[1] == ('Test prompt arithmetic on X started failing '
                                       '(expectation_failed) — answered "5", expected "4"')


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.OK], ids=str)
def test_every_failing_outcome_has_a_complete_sentence(outcome: Outcome) -> None:
    for event in (Event.DOWN, Event.PERSISTENT, Event.RECOVERED):
        severity, sentence = phrase(t(event, str(outcome), minutes=5, message="m"), "X")
        assert severity in ("info", "warning", "critical")
        assert "{" not in sentence and sentence.startswith("X ")


def test_long_messages_are_cut_and_flattened() -> None:
    _, sentence = phrase(t(Event.DOWN, "bad_response", message="line\n" * 100), "X")
    assert "\n" not in sentence and sentence.endswith("…") and len(sentence) < 220


def test_subjects_name_the_runpod_ids() -> None:
    assert subject(endpoint(name="q", pod_id="aq0t10sits4kz2")) == "RunPod pod q (aq0t10sits4kz2)"
    assert subject(endpoint(name="s", kind="serverless", endpoint_id="vllm-sia7z3a2gk6wr4",
                            pod_id=None)) == \
        "RunPod serverless endpoint s (vllm-sia7z3a2gk6wr4)"
    assert subject(endpoint(name="d", kind="openai")) == "Provider d"


def test_draft_carries_evidence_and_utc_time() -> None:
    d = draft(Transition(Event.DOWN, "q", T0, "models", "http_404", 3, 5, "http://x"), "X")
    assert d.ts == "2026-02-18T09:00:00+00:00" and d.event == "down"
    assert (d.evidence.check, d.evidence.outcome, d.evidence.first_row, d.evidence.last_row,
            d.evidence.url) == ("models", "http_404", 3, 5, "http://x")


@pytest.mark.parametrize(("kind", "sentence"), [
    ("pod", "down (404) — pod stopped or destroyed, or port not exposed"),
    ("serverless", "down (404) — RunPod knows no serverless endpoint with this id (deleted, "
                   "or a wrong id)"),
    ("openai", "down (404) — the provider serves nothing at this URL (a wrong base URL or "
               "route)"),
    (None, "down (404) — pod stopped or destroyed, or port not exposed"),
])
def test_a_404_is_told_in_the_terms_of_the_endpoints_kind(kind: str | None,
                                                           sentence: str) -> None:
    assert phrase(t(Event.DOWN), "X", kind) == ("critical", f"X {sentence}")
    persistent = phrase(t(Event.PERSISTENT, minutes=45), "X", kind)[1]
    assert ("restart" in persistent) == (kind in ("pod", None)), persistent
