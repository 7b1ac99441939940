"""What each outcome means for a person on call: the cause it names, what to read, what to do,
and whether it pages or opens a ticket.

One table drives the endpoint alerts (one alert per endpoint, the cause as a label) and
the runbook's sections, so a new outcome gets an alert by adding it to one row here.
``POLICY`` is the paging policy: what pages (severity critical) and what opens a ticket
(warning); docs/runbook.md shows the same table (``policy_table``, checked by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.outcome import Outcome

DOWN, DEGRADED = "down", "degraded"
PAGE, TICKET = "page", "ticket"
SEVERITY_OF_TIER = {PAGE: "critical", TICKET: "warning"}


@dataclass(frozen=True, slots=True)
class Cause:
    name: str  # the ``cause`` label, and the runbook section's anchor (with - for _)
    outcomes: tuple[Outcome, ...]
    states: tuple[str, ...]  # the endpoint states this cause can put an endpoint in
    summary: str  # follows "<endpoint> is down: " / "<endpoint> is degraded: "
    action: str  # the first thing to do; the runbook has the rest

    @property
    def section(self) -> str:
        return self.name.replace("_", "-")

    @property
    def outcome_regex(self) -> str:
        return "|".join(self.outcomes)


CAUSES: tuple[Cause, ...] = (
    Cause("pod_gone", (Outcome.HTTP_404,), (DOWN,),
          "it answers 404: a pod stopped or destroyed (or its port not exposed), or a "
          "serverless endpoint id RunPod does not know (deleted or wrong)",
          "Restart the pod from the RunPod console (the API cannot bring a destroyed pod "
          "back); for a serverless endpoint, check its id in the console."),
    Cause("server_down", (Outcome.HTTP_502, Outcome.CONNECT_ERROR, Outcome.TIMEOUT,
                          Outcome.TLS_ERROR, Outcome.HTTP_5XX), (DOWN, DEGRADED),
          "the server on the pod does not answer ({{ $labels.outcome }})",
          "Read the pod's logs: vLLM still loading, crashed, or hung."),
    Cause("engine_dead", (Outcome.ENGINE_DEAD, Outcome.ENGINE_STUCK), (DOWN,),
          "the vLLM engine is {{ $labels.outcome }} while the HTTP server still answers",
          "Restart vLLM; /v1/models keeps answering 200 with a dead engine."),
    Cause("serverless_crash_loop", (Outcome.CRASH_LOOPING,), (DOWN,),
          "serverless workers crash at start while jobs wait",
          "Read the worker logs; fix the image or its environment, then let workers restart."),
    Cause("serverless_queue", (Outcome.QUEUE_STALLED, Outcome.NO_WORKERS, Outcome.THROTTLED,
                               Outcome.QUEUED_WHILE_IDLE), (DOWN, DEGRADED),
          "the serverless queue does not move ({{ $labels.outcome }})",
          "Check max workers and the allowed GPU types of the endpoint."),
    Cause("cold_start", (Outcome.INITIALIZING_TOO_LONG,), (DOWN, DEGRADED),
          "workers stay initializing: cold starts stall callers",
          "Check image size and model download; consider active workers or FlashBoot."),
    Cause("jobs_failing", (Outcome.JOBS_FAILING, Outcome.JOB_FAILED), (DOWN, DEGRADED),
          "serverless jobs fail ({{ $labels.outcome }})",
          "Read the worker logs for the failing jobs' errors."),
    Cause("context_too_small", (Outcome.CONTEXT_TOO_SMALL, Outcome.CONTEXT_EXCEEDED),
          (DOWN, DEGRADED), "its context window is too small for the payloads",
          "Redeploy with a larger --max-model-len or route long payloads elsewhere."),
    Cause("model_mismatch", (Outcome.MODEL_MISSING,), (DOWN, DEGRADED),
          "it does not serve the expected model",
          "Redeploy the pod with the configured model."),
    Cause("answer_wrong", (Outcome.EXPECTATION_FAILED, Outcome.EMPTY_ANSWER,
                           Outcome.STREAM_BROKEN), (DEGRADED,),
          "its governed answers fail ({{ $labels.outcome }})",
          "Compare the answer with the prompt's cross reference; check model and sampling."),
    Cause("key_rejected", (Outcome.UNAUTHORIZED,), (DOWN,),
          "the API key is rejected or lacks permission",
          "Check the key's credential file and its permissions in the RunPod console; a "
          "changed key needs a restart."),
    Cause("bad_response", (Outcome.BAD_RESPONSE, Outcome.HTTP_4XX), (DOWN, DEGRADED),
          "something other than the expected server answers ({{ $labels.outcome }})",
          "Check the URL, port and proxy; another service may answer on it."),
)

# Outcomes that say the endpoint cannot be observed: RunpodEndpointUnknown, not a cause.
NOT_OBSERVED = (Outcome.UNKNOWN, Outcome.RATE_LIMITED)
# A bug in runpod-probe itself: RunpodProbeError, never an endpoint's fault.
PROBE_BUG = (Outcome.ERROR,)


def causes_for(state: str) -> tuple[Cause, ...]:
    return tuple(cause for cause in CAUSES if state in cause.states)


def uncovered() -> set[Outcome]:
    """Outcomes that need no alert of their own."""
    covered = {o for cause in CAUSES for o in cause.outcomes} | {*NOT_OBSERVED, *PROBE_BUG}
    return set(Outcome) - covered

# Causes where the server answers, but not what its callers need: a wrong answer, a context
# window too small, another model. They open tickets and do not burn the availability SLO,
# unless the operator lists them in ``slo.page_causes``.
SERVES_WRONGLY = ("answer_wrong", "context_too_small", "model_mismatch")


@dataclass(frozen=True, slots=True)
class PolicyRow:
    what: str  # the situation, in the operator's words
    alerts: str  # the alerts that say it
    tier: str  # PAGE or TICKET by default
    why: str


POLICY: tuple[PolicyRow, ...] = (
    PolicyRow("fleet incident (a share of a group fails together)", "RunpodFleetIncident",
              PAGE, "one page for the incident; its endpoints' alerts are held back"),
    PolicyRow("runpod-probe itself offline (cannot reach the outside world)",
              "RunpodProbeOffline", PAGE,
              "endpoints are unknown, not down; their alerts are held back"),
    PolicyRow("runpod-probe down or not scraped", "RunpodProbeDown, RunpodProbeAbsent", PAGE,
              "nothing is watched; every other alert is inhibited and held as it was"),
    PolicyRow("endpoint down (no answer, 404, dead engine, queue stuck, key rejected ...)",
              "RunpodEndpointDown", PAGE, "callers get errors now"),
    PolicyRow("availability budget burning fast (1h/5m, 6h/30m)",
              "RunpodErrorBudgetBurn (critical)", PAGE,
              "intermittent failures that never hold the endpoint down"),
    PolicyRow("endpoint serves wrongly: " + ", ".join(SERVES_WRONGLY),
              "RunpodEndpointDown/Degraded{cause=...}", TICKET,
              "it answers; fix it in working hours (`slo.page_causes` makes it page)"),
    PolicyRow("endpoint degraded (any cause)", "RunpodEndpointDegraded", TICKET,
              "partly working"),
    PolicyRow("slow burn (1d/2h, 3d/6h), failing checks or prompts, probe errors, stale "
              "checks, unknown endpoints", "RunpodErrorBudgetBurn (warning), "
              "RunpodCheckFailing, RunpodPromptFailing, RunpodProbeError, RunpodProbeStale, "
              "RunpodEndpointUnknown", TICKET, "needs attention, not a person at night"),
    PolicyRow("the daemon's own health: store, config reload, ledger, memory, overload, "
              "discovery",
              "RunpodProbeStoreFailing, RunpodProbeConfigReloadFailed, RunpodLedger*, "
              "RunpodLearningAppendFailing, RunpodProbeMemoryHigh, RunpodProbeOverloaded, "
              "RunpodDiscoveryFailing",
              TICKET, "probing goes on"),
)


def tier(state: str, cause: str, page_causes: tuple[str, ...] = ()) -> str:
    """PAGE or TICKET for an endpoint alert of ``cause`` in ``state`` (the policy above)."""
    if cause in page_causes:
        return PAGE
    if state == DEGRADED or cause in SERVES_WRONGLY:
        return TICKET
    return PAGE


def ticket_outcomes(page_causes: tuple[str, ...] = ()) -> tuple[Outcome, ...]:
    """Failing outcomes of the causes that open tickets: they do not burn availability."""
    return tuple(o for c in CAUSES if c.name in SERVES_WRONGLY and c.name not in page_causes
                 for o in c.outcomes)


def policy_table() -> str:
    """``POLICY`` as the Markdown table docs/runbook.md carries."""
    lines = ["| situation | alerts | tier | why |", "|---|---|---|---|"]
    lines += [f"| {r.what} | {r.alerts} | {r.tier} | {r.why} |"
              for r in POLICY]
    return "\n".join(lines)
