"""``prompt:<name>``: ask a governed question over a streamed chat completion and judge it.

A 200 from /v1/models or /health proves the process is up, not that inference works;
this check proves an answer arrives, is right, and measures how fast (TTFT, tokens/s).
Fail closed: a cut stream, an empty or reasoning-only answer, or missing ``usage`` fail
with the reason before any expectation is judged.

tokens/s is the decode rate: ``completion_tokens / (total_s - ttft_s)``, i.e. tokens per
second after the first content token arrived (prefill and queueing are in the TTFT).
"""

from __future__ import annotations

import time
from typing import Any

from probe.check import ANSWERED_AT, CheckContext
from probe.config.model import Endpoint
from probe.http import describe_status, error_message, status_outcome
from probe.net import ProbeClient
from probe.openai_errors import is_context_error  # shared with probe.http.failure_verdict
from probe.outcome import Observation, Outcome
from probe.prompts import budget
from probe.prompts.expectations import Answer, judge_all
from probe.prompts.model import PROMPT_KEY, ContextSettings, Prompt
from probe.prompts.request import chat_body, forget_model, served_model
from probe.prompts.stream import ChatReply, post_chat

ANSWER_CHARS = 500  # how much of the answer is kept as evidence


def reply_failure(reply: ChatReply) -> Observation | None:
    """The verdict for a reply that never delivered a complete answer, or None."""
    if not 200 <= reply.status < 300:
        message = error_message(reply.body) if reply.body else ""
        if is_context_error(reply.status, message) or is_context_error(
                reply.status, reply.body[:2048].decode("utf-8", "replace")):
            return Observation(Outcome.CONTEXT_EXCEEDED, f"HTTP {reply.status}: {message}",
                               reply.status)
        if reply.status == 404 and "does not exist" in message.lower():
            # vLLM's JSON 404 for an unknown model, not the proxy's 404 for a missing pod.
            return Observation(Outcome.MODEL_MISSING, f"HTTP 404: {message}", reply.status)
        failed = status_outcome(reply.status) or Outcome.HTTP_4XX
        return Observation(failed, describe_status(reply.status, reply.body), reply.status)
    if reply.error is not None:
        where = "in the stream" if reply.streamed else "in the body"
        if is_context_error(reply.error_code, reply.error):
            return Observation(Outcome.CONTEXT_EXCEEDED, f"error {where}: {reply.error}",
                               reply.status)
        outcome = Outcome.HTTP_5XX if (reply.error_code or 0) >= 500 else Outcome.STREAM_BROKEN
        return Observation(outcome, f"server sent an error {where} after HTTP {reply.status}: "
                                f"{reply.error}", reply.status)
    if not reply.done:
        why = f" ({reply.cut})" if reply.cut else ""
        return Observation(Outcome.STREAM_BROKEN, f"stream ended before [DONE] after "
                                              f"{len(reply.content)} answer chars{why}",
                           reply.status)
    return None


def _usage(reply: ChatReply) -> tuple[int, int] | None:
    usage = reply.usage or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    return None


def tokens_per_second(reply: ChatReply, completion_tokens: int) -> float | None:
    if reply.ttft_s is None or completion_tokens <= 0 or reply.total_s <= reply.ttft_s:
        return None
    return completion_tokens / (reply.total_s - reply.ttft_s)


async def check(endpoint: Endpoint, client: ProbeClient, ctx: CheckContext) -> Observation:
    prompt = ctx.params.get(PROMPT_KEY)
    if not isinstance(prompt, Prompt):
        return Observation(Outcome.ERROR, "no prompt attached to this job (planner bug)")
    chars = sum(len(m.content) for m in prompt.messages)
    needed = budget.estimate_tokens(chars, prompt.max_tokens)
    refusal = budget.over_budget(ctx.shared, ContextSettings.of(endpoint).token_budget_per_hour,
                                 needed)
    if refusal is not None:
        return Observation(Outcome.SKIPPED_BUDGET, refusal, details=_base(prompt))
    model = await served_model(endpoint, client, ctx)
    if isinstance(model, Observation):
        return model
    spend = budget.meter(ctx.shared).reserve(needed)
    reply = await post_chat(client, f"{endpoint.openai_base}/chat/completions",
                            ctx.headers(endpoint),
                            chat_body(prompt.messages, prompt.max_tokens, model, prompt.seed),
                            ctx.max_body_bytes)
    usage = _usage(reply)
    if usage is not None:
        spend.settle(sum(usage))
    if reply.status == 404:
        forget_model(ctx)  # the model may have been redeployed under another name
    if reply_failure(reply) is None and usage is not None and usage[1] > 0:
        ctx.shared[ANSWERED_AT] = time.time()  # the engine generated: evidence it is not stuck
    return judge_reply(prompt, reply, usage)


def _base(prompt: Prompt) -> dict[str, Any]:
    return {"prompt": prompt.name, "cross": prompt.cross}


def judge_reply(prompt: Prompt, reply: ChatReply,
                usage: tuple[int, int] | None) -> Observation:
    details = {**_base(prompt), "streamed": reply.streamed, "total_s": round(reply.total_s, 4),
               "ttft_s": None if reply.ttft_s is None else round(reply.ttft_s, 4),
               "answer": reply.content[:ANSWER_CHARS], "finish_reason": reply.finish_reason}
    if usage is not None:
        details["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    failed = reply_failure(reply)
    if failed is not None:
        return Observation(failed.outcome, failed.message, failed.http_status, details)
    if not reply.content.strip():
        if reply.reasoning.strip():
            message = (f"answer holds only reasoning text ({len(reply.reasoning)} chars), no "
                       f"content (finish_reason {reply.finish_reason}; max_tokens "
                       f"{prompt.max_tokens} too small for a reasoning model?)")
        else:
            message = f"empty answer (finish_reason {reply.finish_reason})"
        return Observation(Outcome.EMPTY_ANSWER, message, reply.status, details)
    if usage is None:
        return Observation(Outcome.BAD_RESPONSE, "no usage reported (stream_options.include_usage "
                           "ignored?): tokens spent and tokens/s cannot be checked",
                           reply.status, details)
    rate = tokens_per_second(reply, usage[1])
    details["tokens_per_s"] = None if rate is None else round(rate, 2)
    findings = judge_all(prompt.expect, Answer(reply.content, reply.total_s, reply.ttft_s, rate))
    details["findings"] = [f.reason for f in findings]
    failures = [f.reason for f in findings if not f.passed]
    if failures or not findings:
        return Observation(Outcome.EXPECTATION_FAILED, "; ".join(failures or ["no expectation"])
                           + f" [cross: {prompt.cross}]", reply.status, details)
    ttft = "" if reply.ttft_s is None else f", TTFT {reply.ttft_s:.3f}s"
    return Observation(Outcome.OK, f"answer passed {len(findings)} expectation(s){ttft}, "
                               f"{usage[1]} tokens in {reply.total_s:.3f}s", reply.status,
                       details)
