"""The generation protocol every policy backend implements.

Design: a backend takes a batch of requests and returns, per request, ``n`` samples. A request is
either raw prompt text (continued as is) or chat messages (the backend applies the tokenizer's chat
template with a generation prompt), optionally followed by ``prefix``: text the assistant has
already written, which MCTS uses to continue a partial solution. Stop strings are honoured and are
not part of the returned text. Each sample reports why it ended ("stop": EOS or a stop string;
"length": max_new_tokens reached), its token count and the sum of its token log-probabilities under
the sampling distribution's model (before temperature), which MCTS turns into priors P(a|s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


def check_params(index: int, params: SamplingParams) -> None:
    """Reject what no backend can honour, naming request ``index`` of the batch."""
    p = params
    if p.n < 1 or p.max_new_tokens < 0 or p.temperature < 0 or not 0 < p.top_p <= 1:
        raise ValueError(f"request {index}: invalid sampling params {p}")


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    prefix: str = ""  # assistant text already written (continued, not re-generated)
    params: SamplingParams = field(default_factory=SamplingParams)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a GenerationRequest needs exactly one of prompt or messages")


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: FinishReason
    n_tokens: int
    logprob: float  # sum of log-probabilities of the generated tokens
    stop_string: str | None = None  # which stop string ended it, if any


@runtime_checkable
class Backend(Protocol):
    """Anything that turns a batch of requests into samples."""

    name: str

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model is conditioned on (chat template applied, prefix appended)."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        """For each request, ``request.params.n`` samples, in order."""
        ...
