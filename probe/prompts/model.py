"""The governed test prompts as frozen values: what to ask, what to expect, and why.

A prompt follows the scope's test table (``prompt | expect | cross``): the question, the
expected answer as a set of checkable expectations, and the reference the expectation
comes from. Each runs as its own check, named ``prompt:<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECK_PREFIX = "prompt:"
# Where a prompt job's endpoint carries the prompt it runs (see ``probe.prompts.plan``).
PROMPT_KEY = "prompt"
# Where a context-fit job's endpoint carries the completion room a caller needs.
COMPLETION_KEY = "completion_tokens"


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
    endpoints: tuple[str, ...] | None = None  # None: every endpoint
    seed: int | None = 0  # None: the server does not accept one

    @property
    def check_name(self) -> str:
        return CHECK_PREFIX + self.name

    def runs_on(self, endpoint: str) -> bool:
        return self.endpoints is None or endpoint in self.endpoints


@dataclass(frozen=True, slots=True)
class TokenBounds:
    """The scope's TOKENS_MIN / TOKENS_MAX / MAX_TOKENS: limits and default for max_tokens."""

    minimum: int = 1
    maximum: int = 4096
    default: int = 64


@dataclass(frozen=True, slots=True)
class PromptSection:
    """``Config.sections["prompts"]``."""

    prompts: tuple[Prompt, ...] = ()
    bounds: TokenBounds = TokenBounds()
    # Endpoint names as written in prompts, with their field path: checked by a validator.
    references: tuple[tuple[str, str], ...] = ()
