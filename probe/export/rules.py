"""What each outcome means for a person on call: severity, summary, next step.

One table drives both the generated Prometheus alert rules and the dashboard legend, so a
new outcome gets an alert by adding one row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.outcome import Outcome


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    outcomes: tuple[Outcome, ...]
    severity: str  # critical | warning
    for_: str
    summary: str
    action: str


RULES: tuple[AlertRule, ...] = (
    AlertRule("RunpodPodGone", (Outcome.HTTP_404,), "critical", "5m",
              "{{ $labels.endpoint }} answers 404: pod stopped or destroyed, or port not exposed",
              "Restart the pod from the RunPod console (not fixable via API); check the port is "
              "exposed as HTTP."),
    AlertRule("RunpodServerDown", (Outcome.HTTP_502, Outcome.CONNECT_ERROR, Outcome.TIMEOUT,
                                   Outcome.TLS_ERROR, Outcome.HTTP_5XX),
              "critical", "5m",
              "{{ $labels.endpoint }} {{ $labels.check }} failing: {{ $labels.outcome }}",
              "The server on the pod is down, loading or hung: read the pod's logs."),
    AlertRule("RunpodEngineDead", (Outcome.ENGINE_DEAD, Outcome.ENGINE_STUCK), "critical", "2m",
              "{{ $labels.endpoint }}: vLLM engine {{ $labels.outcome }} while the HTTP server "
              "still answers", "Restart vLLM; /v1/models keeps answering 200 with a dead engine."),
    AlertRule("RunpodModelMismatch", (Outcome.MODEL_MISSING, Outcome.CONTEXT_TOO_SMALL,
                                      Outcome.CONTEXT_EXCEEDED),
              "warning", "10m",
              "{{ $labels.endpoint }}: {{ $labels.outcome }} (wrong model or context window)",
              "Redeploy with the expected model and --max-model-len, or route long payloads to a "
              "larger-context provider."),
    AlertRule("RunpodServerlessUnhealthy", (Outcome.CRASH_LOOPING, Outcome.QUEUE_STALLED,
                                            Outcome.NO_WORKERS, Outcome.THROTTLED,
                                            Outcome.INITIALIZING_TOO_LONG,
                                            Outcome.QUEUED_WHILE_IDLE),
              "critical", "5m",
              "{{ $labels.endpoint }}: serverless {{ $labels.outcome }}",
              "Read the worker logs (crash loop), check max workers and allowed GPU types."),
    AlertRule("RunpodJobsFailing", (Outcome.JOBS_FAILING, Outcome.JOB_FAILED), "warning", "10m",
              "{{ $labels.endpoint }}: jobs failing ({{ $labels.outcome }})",
              "Read the worker logs for the failing jobs' errors."),
    AlertRule("RunpodAnswerWrong", (Outcome.EXPECTATION_FAILED, Outcome.EMPTY_ANSWER,
                                    Outcome.STREAM_BROKEN),
              "warning", "10m",
              "{{ $labels.endpoint }} {{ $labels.check }}: {{ $labels.outcome }}",
              "The model answers but not as governed: compare with the prompt's cross reference."),
    AlertRule("RunpodKeyRejected", (Outcome.UNAUTHORIZED,), "critical", "5m",
              "{{ $labels.endpoint }}: API key rejected or lacks permission",
              "Check the key in the environment file and its permissions in the RunPod console."),
    AlertRule("RunpodBadResponse", (Outcome.BAD_RESPONSE, Outcome.HTTP_4XX), "warning", "10m",
              "{{ $labels.endpoint }} {{ $labels.check }}: {{ $labels.outcome }}",
              "Something other than the expected server answers on this URL."),
    AlertRule("RunpodStateUnknown", (Outcome.UNKNOWN, Outcome.RATE_LIMITED), "warning", "15m",
              "{{ $labels.endpoint }} {{ $labels.check }} cannot be observed "
              "({{ $labels.outcome }})",
              "The RunPod API is unreachable or rate limiting; the endpoint's real state is "
              "unknown, not healthy."),
)


def uncovered() -> set[Outcome]:
    """Outcomes that need no alert of their own."""
    covered = {o for rule in RULES for o in rule.outcomes}
    return set(Outcome) - covered
