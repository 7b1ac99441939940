"""What each transition says in the ledger: severity and one human sentence.

The table is keyed by outcome, in the style of the RunPod scope's hand-written LEARNING
rows ("persistently down (404) — needs manual restart from RunPod dashboard"): a short
label, how bad it is, what it most likely means, what to do when it persists, and how
its end is told. Outcomes without a row fall back to a generic sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probe.config.model import Endpoint
from probe.durations import format_duration
from probe.ledger.chain import Evidence, LedgerDraft
from probe.outcome import Outcome
from probe.verdict import (
    AFTER_WINDOW,
    IN_INCIDENT,
    INCIDENT_EVENTS,
    Event,
    FleetIncident,
    Maintenance,
    Transition,
    Window,
)

MAX_MESSAGE_CHARS = 160


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    label: str
    severity: str
    down: str  # after the subject; may use {message} {status} {check}
    persists: str = "check it by hand"
    recovered: str = "recovered after {duration} down ({label})"
    # Replaces "persistently down ({label}) for {duration} — {persists}" where "down" is
    # the wrong word (a key without permission is not an outage).
    persistent: str | None = None


RULES: dict[str, OutcomeRule] = {
    Outcome.HTTP_404: OutcomeRule(
        "404", "critical", "down (404) — pod stopped or destroyed, or port not exposed",
        "needs manual restart from the RunPod dashboard; not fixable via API"),
    Outcome.HTTP_502: OutcomeRule(
        "502", "critical",
        "down (502) — proxy up but nothing listening on the port (crashed or still loading)",
        "the server is not coming back: read the pod logs and restart it"),
    Outcome.HTTP_5XX: OutcomeRule(
        "5xx", "critical", "failing with server errors ({status}) — {message}",
        "read the server logs"),
    Outcome.HTTP_4XX: OutcomeRule(
        "4xx", "warning", "refusing requests ({status}) — {message}"),
    Outcome.UNAUTHORIZED: OutcomeRule(
        "401/403", "critical", "API key lacks permission — {check} returns {status}",
        "give the key access or set another one",
        "API key accepted again after {duration} refused"),
    Outcome.TIMEOUT: OutcomeRule(
        "timeout", "critical", "down (timeout) — no complete answer within the deadline",
        "check the pod is running and not overloaded"),
    Outcome.CONNECT_ERROR: OutcomeRule(
        "connection error", "critical", "unreachable — {message}"),
    Outcome.TLS_ERROR: OutcomeRule(
        "TLS error", "critical", "TLS failing — {message}"),
    Outcome.BAD_RESPONSE: OutcomeRule(
        "bad response", "warning", "answering with an unusable body — {message}"),
    Outcome.MODEL_MISSING: OutcomeRule(
        "model missing", "critical", "not serving the expected model — {message}",
        "redeploy with the expected model"),
    Outcome.CONTEXT_TOO_SMALL: OutcomeRule(
        "context too small", "warning", "context window too small — {message}",
        "relaunch with a larger MAX_MODEL_LEN"),
    Outcome.ENGINE_DEAD: OutcomeRule(
        "engine dead", "critical", "engine dead — /health fails while /v1/models still answers",
        "restart the server"),
    Outcome.ENGINE_STUCK: OutcomeRule(
        "engine stuck", "critical", "engine stuck — requests waiting, no tokens generated",
        "restart the server"),
    Outcome.CRASH_LOOPING: OutcomeRule(
        "crash loop", "critical", "workers crash-looping — {message}",
        "read the worker logs; fix the image or its settings",
        "workers healthy again after {duration} crash-looping"),
    Outcome.QUEUE_STALLED: OutcomeRule(
        "queue stalled", "critical", "serverless queue stalled — {message}",
        "read the worker logs", "serverless queue drained after {duration} stalled"),
    Outcome.NO_WORKERS: OutcomeRule(
        "no workers", "critical", "jobs queued but no workers — {message}",
        "check max workers and GPU availability", "workers back after {duration} without any"),
    Outcome.THROTTLED: OutcomeRule(
        "throttled", "warning", "workers throttled (no GPU free) — {message}",
        "add GPU types to the endpoint", "workers no longer throttled after {duration}"),
    Outcome.INITIALIZING_TOO_LONG: OutcomeRule(
        "cold start over budget", "warning", "cold start over budget — {message}",
        "use FlashBoot, a smaller image or one always-active worker",
        "workers ready after a {duration} cold start"),
    Outcome.JOBS_FAILING: OutcomeRule(
        "jobs failing", "critical", "jobs failing — {message}", "read the worker logs",
        "jobs succeed again after {duration}"),
    Outcome.QUEUED_WHILE_IDLE: OutcomeRule(
        "queued while idle", "warning", "jobs queued while workers idle — {message}"),
    Outcome.JOB_FAILED: OutcomeRule(
        "job failed", "critical", "test job failed — {message}", "read the worker logs",
        "test job succeeds again after {duration}"),
}


# Rules for one check's outcome, before the outcome's own: discovery's 403 is the scope's
# "RunPod API key lacks pod management permissions — ...; cannot ... programmatically".
CHECK_RULES: dict[tuple[str, str], OutcomeRule] = {
    ("discovery", Outcome.UNAUTHORIZED): OutcomeRule(
        "401/403", "critical", "{message}",
        recovered="key accepted again after {duration} refused — discovery lists the fleet",
        persistent="key still lacks permission after {duration} — give it read access to pods "
                   "and serverless endpoints (or set another key); configured endpoints are "
                   "still probed"),
}


# Rules for an outcome from an endpoint of one kind, before the outcome's own: RunPod's API
# answers 404 for a serverless endpoint id it does not know (there is no pod to be stopped),
# a provider for a route or base URL it does not serve.
KIND_RULES: dict[tuple[str, str], OutcomeRule] = {
    ("serverless", Outcome.HTTP_404): OutcomeRule(
        "404", "critical",
        "down (404) — RunPod knows no serverless endpoint with this id (deleted, or a wrong id)",
        "check the endpoint id in the RunPod console; a deleted endpoint must be created "
        "again and its new id put in the config"),
    ("openai", Outcome.HTTP_404): OutcomeRule(
        "404", "critical", "down (404) — the provider serves nothing at this URL "
        "(a wrong base URL or route)", "check the base URL against the provider's docs"),
}


def rule_for(outcome: str | None, check: str | None = None,
             kind: str | None = None) -> OutcomeRule:
    if (check or "", outcome or "") in CHECK_RULES:
        return CHECK_RULES[(check or "", outcome or "")]
    if (kind or "", outcome or "") in KIND_RULES:
        return KIND_RULES[(kind or "", outcome or "")]
    if outcome in RULES:
        return RULES[outcome]
    label = outcome or "failing"
    return OutcomeRule(label, "critical", f"down ({label}) — {{message}}")


def subject(endpoint: Endpoint) -> str:
    """How a pattern names an endpoint: kind, name and the RunPod id when there is one."""
    if endpoint.kind == "pod":
        return f"RunPod pod {endpoint.name} ({endpoint.pod_id})"
    if endpoint.kind == "serverless":
        return f"RunPod serverless endpoint {endpoint.name} ({endpoint.endpoint_id})"
    return f"Provider {endpoint.name}"


MAINTENANCE_CHECK = "maintenance"  # the evidence of a window's start and end


def draft(t: Transition, who: str, kind: str | None = None,
          incident: str | None = None) -> LedgerDraft:
    """``incident``: the fleet incident the endpoint's failure belongs to; its down,
    persistent and recovered entries cite it."""
    severity, pattern = phrase(t, who, kind)
    link, members = (incident, None) if t.event in IN_INCIDENT else (None, None)
    if link is not None:  # for a reader; what folds the entry is the field, never this text
        pattern = f"{pattern} [part of fleet incident {link}]"
    for fleet in (t.new, t.old):
        if t.event in INCIDENT_EVENTS and isinstance(fleet, FleetIncident):
            link, members = fleet.id, fleet.evidence
    observed = t.at.isoformat(timespec="seconds")
    check = MAINTENANCE_CHECK if t.event in (Event.MAINTENANCE_STARTED,
                                             Event.MAINTENANCE_ENDED) else t.check
    evidence = Evidence(check, t.outcome, t.first_row, t.last_row, t.url, observed, link,
                        members)
    return LedgerDraft(ts=observed, severity=severity,
                       endpoint=t.endpoint, event=str(t.event), pattern=pattern,
                       evidence=evidence)


def phrase(t: Transition, who: str, kind: str | None = None) -> tuple[str, str]:
    """(severity, sentence) for a transition of the endpoint called ``who``, of ``kind``
    (pod, serverless, openai; None for a standing endpoint such as discovery's)."""
    rule = rule_for(t.outcome, t.check, kind)
    values = {"message": _short(t.message), "status": t.http_status or "no HTTP status",
              "check": t.check, "label": rule.label,
              "duration": format_duration(t.duration_s or 0.0)}
    _, parameter, prompt = (t.check or "").partition(":")  # a family's: prompt:<name>
    prompt = prompt if parameter else t.check or ""
    match t.event:
        case Event.INCIDENT_OPENED if isinstance(t.new, FleetIncident):
            return "critical", incident_opened(t.new, rule.label)
        case Event.INCIDENT_CLOSED if isinstance(t.old, FleetIncident):
            return "info", incident_closed(t.old, rule.label)
        case Event.DOWN if t.old == AFTER_WINDOW:
            return rule.severity, (f"{who} {rule.down.format(**values)} — still failing when "
                                   "its maintenance window ended")
        case Event.DOWN:
            return rule.severity, f"{who} {rule.down.format(**values)}"
        case Event.MAINTENANCE_STARTED if isinstance(t.new, Window):
            w = t.new
            until = f"until {w.end.isoformat(timespec='minutes')}" if w.end else \
                "while it stays so"
            return "info", (f"{who} in maintenance ({w.name}: {_short(w.reason)}; declared by "
                            f"{w.origin}) {until} — checks go on, alerts are silenced")
        case Event.MAINTENANCE_ENDED if isinstance(t.old, Maintenance):
            m = t.old
            healthy = t.new == "came back healthy"
            return ("info" if healthy else "warning"), (
                f"{who} maintenance {m.name} ended after {values['duration']}: {t.new} "
                f"({m.results} results, {m.failed} failing, during the window)")
        case Event.PERSISTENT:
            if rule.persistent is not None:
                return "critical", f"{who} {rule.persistent.format(**values)}"
            return "critical", (f"{who} persistently down ({rule.label}) for "
                                f"{values['duration']} — {rule.persists}")
        case Event.RECOVERED:
            return "info", f"{who} {rule.recovered.format(**values)}"
        case Event.DEGRADED:
            return "warning", (f"{who} degraded — test prompt {prompt} failing ({t.outcome}): "
                               f"{values['message']}")
        case Event.RESTORED:
            return "info", (f"{who} answers as governed again after {values['duration']} "
                            f"degraded (test prompt {prompt}: {t.outcome})")
        case Event.PROMPT_FAILING:
            return "warning", (f"Test prompt {prompt} on {who} started failing "
                               f"({t.outcome}) — {values['message']}")
        case Event.PROMPT_PASSING:
            return "info", (f"Test prompt {prompt} on {who} passes again after "
                            f"{values['duration']} failing ({t.outcome})")
        case Event.CONTEXT_CHANGED:
            grew = int(t.new) > int(t.old)
            return ("info" if grew else "warning"), (
                f"{who} context window {'upgraded' if grew else 'reduced'} from {t.old} to "
                f"{t.new} — confirmed via /v1/models max_model_len")
        case Event.MODEL_CHANGED:
            return "warning", (f"{who} now serves {t.new} instead of {t.old} — confirmed via "
                               f"/v1/models")
        case Event.APPEARED if t.check == "discovery":
            return "info", f"{who} discovered via the RunPod API — added to the probed fleet"
        case Event.APPEARED:
            return "info", f"{who} added to the probed fleet"
        case Event.DISAPPEARED if t.check == "discovery":
            return "info", (f"{who} no longer discovered via the RunPod API (gone, not running "
                            "or filtered out) — no longer probed")
        case Event.DISAPPEARED:
            return "info", f"{who} removed from the config — no longer probed"
    raise ValueError(f"no phrase for {t.event}")  # pragma: no cover - Event is closed


SCOPE_WORDS = {"proxy": "behind RunPod proxy", "serverless": "behind serverless API",
               "provider": "of provider"}


def group_words(scope: str) -> str:
    """``proxy:proxy.runpod.net`` -> "behind RunPod proxy proxy.runpod.net"."""
    kind, _, host = scope.partition(":")
    if not host:
        return "of the fleet"
    return f"{SCOPE_WORDS.get(kind, kind)} {host}"


def _named(incident: FleetIncident) -> str:
    names = ", ".join(incident.evidence)
    more = incident.affected - len(incident.evidence)
    return names + (f" and {more} more" if more > 0 else "")


def incident_opened(incident: FleetIncident, label: str) -> str:
    return (f"Fleet incident {incident.id}: {incident.affected} of {incident.group_size} "
            f"endpoints {group_words(incident.scope)} down together ({label}) — one cause "
            f"outside the endpoints is likely (proxy, region, provider); endpoints: "
            f"{_named(incident)}")


def incident_closed(incident: FleetIncident, label: str) -> str:
    return (f"Fleet incident {incident.id} closed after "
            f"{format_duration(incident.duration_s or 0.0)}: {incident.affected} endpoints "
            f"{group_words(incident.scope)} were down ({label}); endpoints: "
            f"{_named(incident)}")


def _short(message: str) -> str:
    text = re.sub(r"\s+", " ", message).strip()
    if not text:
        return "no detail"
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
