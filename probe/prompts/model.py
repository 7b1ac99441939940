"""The governed test prompts as frozen values: what to ask, what to expect, and why.

A prompt follows the scope's test table (``prompt | expect | cross``): the question, the
expected answer as a set of checkable expectations, and the reference the expectation
comes from. Each runs as its own check, named ``prompt:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.config.model import Config, Endpoint

CHECK_PREFIX = "prompt:"
# Job parameters (``Job.params``, read by the checks from ``ctx.params``): the prompt a prompt
# job asks, and the completion room a context-fit job must leave.
PROMPT_KEY = "prompt"
COMPLETION_KEY = "completion_tokens"
SECTION = "prompts"
DEFAULT_KINDS: tuple[str, ...] = ("pod",)


@dataclass(frozen=True, slots=True)
class Expectation:
    """One condition on the answer; ``negated`` flips a definite pass or fail (never an
    unknown: what cannot be checked fails either way)."""

    kind: str
    argument: Any
    negated: bool = False

    @property
    def label(self) -> str:
        return ("not_" if self.negated else "") + self.kind


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    messages: tuple[Message, ...]
    expect: tuple[Expectation, ...]  # all of them must pass
    cross: str  # where the expectation comes from, e.g. "RUNPOD/CANON.md axiom"
    interval_s: float
    max_tokens: int
    endpoints: tuple[str, ...] | None = None  # None: every endpoint of ``kinds``
    seed: int | None = 0  # None: the server does not accept one
    # Kinds it runs on when ``endpoints`` is not given. A prompt wakes a serverless worker
    # and spends a paid provider's tokens, so those are opt-in: only pods by default.
    kinds: tuple[str, ...] = DEFAULT_KINDS

    @property
    def check_name(self) -> str:
        return CHECK_PREFIX + self.name

    def runs_on(self, endpoint: Endpoint) -> bool:
        if self.endpoints is not None:
            return endpoint.name in self.endpoints
        return endpoint.kind in self.kinds


@dataclass(frozen=True, slots=True)
class TokenBounds:
    """The scope's TOKENS_MIN / TOKENS_MAX / MAX_TOKENS: limits and default for max_tokens."""

    minimum: int = 1
    maximum: int = 4096
    default: int = 64


@dataclass(frozen=True, slots=True)
class PromptSection:
    """The ``prompts:`` section."""

    prompts: tuple[Prompt, ...] = ()
    bounds: TokenBounds = TokenBounds()
    # Endpoint names as written in prompts, with their field path: checked by a validator.
    references: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, config: Config) -> PromptSection:
        section = config.sections.get(SECTION)
        return section if isinstance(section, PromptSection) else cls()


@dataclass(frozen=True, slots=True)
class ContextSettings:
    """An endpoint's context-fit and budget keys (``required_context``,
    ``active_context_probe``, ``token_budget_per_hour``)."""

    required_context: int | None = None
    active_every_s: float | None = None
    token_budget_per_hour: int | None = None

    @staticmethod
    def required_of(endpoint: Endpoint) -> int | None:
        """``of(endpoint).required_context`` alone: the context fit reads it at every
        check, and building the three settings was a third of its 4.8 µs."""
        value = endpoint.extra.get("required_context")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else None

    @classmethod
    def of(cls, endpoint: Endpoint) -> ContextSettings:
        extra = endpoint.extra

        def number(key: str) -> Any:
            value = extra.get(key)
            return value if isinstance(value, int | float) and not isinstance(value, bool) \
                else None

        required, budget = number("required_context"), number("token_budget_per_hour")
        active = number("active_context_probe")
        return cls(int(required) if required is not None else None,
                   float(active) if active else None,
                   int(budget) if budget is not None else None)
