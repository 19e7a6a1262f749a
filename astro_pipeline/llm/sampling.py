"""Token choice for the hand-written decode loop: per-row temperature/top-p and counter-based noise.

Design choices:

* Randomness is a pure function of (request seed, sample index, step): a SplitMix64 hash turned into
  a uniform number, and the token is drawn by inverse CDF. A sample therefore does not depend on
  which other requests share its batch, on the micro-batch size, or on rows dropped when they
  finish; one shared ``torch.Generator`` would make every sample depend on all the others.
* Temperature 0 is greedy (argmax). Top-p keeps the smallest set of most likely tokens whose mass
  reaches ``top_p``; the sort is skipped when every row has top_p = 1.
* The reported log-probability is that of the chosen token under the model's own distribution
  (``log_softmax`` of the raw logits, before temperature and top-p), as the protocol says.
"""

from __future__ import annotations

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (uint64 arithmetic wraps by design)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def row_keys(seeds: list[int], sample_indices: list[int]) -> np.ndarray:
    """One 64-bit stream key per (request seed, sample index)."""
    s = np.array([x & _MASK for x in seeds], dtype=np.uint64)
    j = np.array(sample_indices, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix(_mix(s) + j * _GOLDEN)


def uniforms(keys: np.ndarray, step: int) -> np.ndarray:
    """A uniform number in [0, 1) per row for decode step ``step`` (float64, 53 random bits)."""
    with np.errstate(over="ignore"):
        z = _mix(keys + np.uint64(step + 1) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def choose_tokens(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row; return (tokens, log-probabilities under the untempered model).

    ``logits`` (B, V); ``temperature``, ``top_p``, ``u`` (B,) float tensors on the same device.
    """
    logits = logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    greedy = temperature <= 0
    tokens = logits.argmax(dim=-1)
    if not bool(greedy.all()):
        t = torch.where(greedy, torch.ones_like(temperature), temperature).unsqueeze(-1)
        probs = torch.softmax(logits / t, dim=-1)
        if bool((top_p < 1.0).any()):
            sorted_p, order = probs.sort(dim=-1, descending=True)
            before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of strictly more likely tokens
            sorted_p = sorted_p.masked_fill(before >= top_p.unsqueeze(-1), 0.0)
            picked = _inverse_cdf(sorted_p, u)
            sampled = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
        else:
            sampled = _inverse_cdf(probs, u)
        tokens = torch.where(greedy, tokens, sampled)
    return tokens, logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    cdf = probs.cumsum(dim=-1)
    target = (u * cdf[:, -1]).unsqueeze(-1).to(cdf.dtype)
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    idx = idx.clamp_(max=probs.shape[-1] - 1)
    # a token of probability 0 can only be hit through float rounding at the top end; step back
    # to the last token with mass so a top-p-excluded token is never returned
    zero = probs.gather(-1, idx.unsqueeze(-1)).squeeze(-1) <= 0
    if bool(zero.any()):
        last_nonzero = (probs > 0).cumsum(dim=-1).argmax(dim=-1)
        idx = torch.where(zero, last_nonzero, idx)
    return idx
