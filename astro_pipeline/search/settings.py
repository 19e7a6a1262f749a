"""Settings of the search stage (recipe section ``search``).

Design: every knob of DESIGN.md §2 "Selection / Expansion and evaluation / Backup / Settings" is a
field here, never a constant in the code. The defaults are the CPU demo's (a ~3M-parameter model,
~64 synthetic problems of 2-4 steps, 2 cores, a few minutes): k=4, M=4, 8 iterations, depth 10.
The paper's values (k=8, M=16, 32 iterations, depth 50) belong in the GPU recipes.

``prior_normalization`` decides how a sampled step's log-probability becomes the prior P(a|s):

* ``"sequence"`` (the paper's wording, default): softmax over the k siblings of the summed token
  log-probabilities, i.e. the siblings' sequence probabilities renormalized to sum to one. It
  favours short steps.
* ``"per_token"``: softmax over the siblings of the mean per-token log-probability (length
  normalized), so a long step is not penalized for its length.
* ``"uniform"``: P(a|s) = 1/k (an ablation: PUCT without a policy prior).
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

PRIOR_NORMALIZATIONS = ("sequence", "per_token", "uniform")
BACKUPS = ("paper", "rollout_nodes")


@dataclass(frozen=True)
class SearchSettings:
    k: int = setting(4, "k: candidate next steps sampled per expansion (children per node; paper: 8)")
    m: int = setting(4, "M: rollouts per new non-terminal child; R(s') is their mean verifier reward (paper: 16)")
    iterations: int = setting(8, "MCTS iterations (select, expand, evaluate, backup) per problem (paper: 32)")
    max_depth: int = setting(
        10, "depth limit: a node this many steps below the root is terminal and never expanded (paper: 50)"
    )
    c_puct: float = setting(1.0, "c_puct: weight of the prior/exploration term in PUCT selection")
    expansion_temperature: float = setting(1.0, "sampling temperature of the k candidate steps (0 = greedy)")
    rollout_temperature: float = setting(0.7, "sampling temperature of the M rollouts (0 = greedy)")
    top_p: float = setting(1.0, "nucleus sampling top_p for steps and rollouts (1.0 = off)")
    max_step_tokens: int = setting(
        64, "max new tokens of one step; a step cut here ('length') is not terminal but counts toward depth"
    )
    max_rollout_tokens: int = setting(
        256, "max new tokens of one rollout (the whole rest of a solution); a cut rollout without a box scores 0"
    )
    seed: int = setting(
        0, "base seed; each request's seed is derived from it, the problem and the node's path in the tree"
    )
    parallel_trees: int = setting(
        64, "trees advanced together; one generation call carries the expansions (or rollouts) of all of them"
    )
    max_sequences_per_call: int = setting(
        0, "split a phase's generation into calls of at most this many sequences (requests x n); 0 = one call"
    )
    prior_normalization: str = setting(
        "sequence",
        "how step log-probs become priors P(a|s): 'sequence' = softmax of summed logprobs over siblings, "
        "'per_token' = softmax of mean per-token logprobs (length-normalized), 'uniform' = 1/k",
    )
    skip_exhausted: bool = setting(
        True,
        "selection never enters a terminal node or a subtree with nothing left to expand, and a tree with "
        "nothing left stops early; false = classic MCTS, where a selected terminal is backed up again",
    )
    system_prompt: str = setting("", "optional system message before the problem ('' = none)")
    # how much of the generated text is kept, and when a tree stops (issue 17; paper: merge off, paper, no stop)
    expansion_samples: int = setting(
        0, "samples drawn per expansion (0 = k); after merging identical steps at most k distinct ones become children"
    )
    merge_siblings: bool = setting(
        True,
        "merge sampled steps that are equal up to whitespace into one child carrying the prior mass of all its "
        "copies (merges are counted); false = every sample is its own child, as in the paper",
    )
    backup: str = setting(
        "rollout_nodes",
        "'rollout_nodes': each rollout is added to the tree as a chain of nodes (its terminal counts for cloning, its "
        "steps can be expanded later) and counts as one visit of every node it passes; 'paper': rollouts only give "
        "R(s') and the paper's backup formula applies (see astro_pipeline.search.mcts)",
    )
    early_stop: bool = setting(
        True,
        "stop a tree once procedure cloning has what it needs: a correct terminal and stop_incorrect incorrect "
        "terminals with pairwise distinct answers (after min_iterations); false = always run `iterations`",
    )
    stop_incorrect: int = setting(
        2, "incorrect terminals with distinct answers a tree needs before it stops early (the largest k of cloning.backtracks)"
    )
    min_iterations: int = setting(1, "iterations a tree always gets before it may stop early")

    def __post_init__(self) -> None:
        if self.prior_normalization not in PRIOR_NORMALIZATIONS:
            raise ValueError(
                f"search.prior_normalization must be one of {PRIOR_NORMALIZATIONS}, got {self.prior_normalization!r}"
            )
        for name in ("k", "m", "iterations", "max_depth", "max_step_tokens", "max_rollout_tokens", "parallel_trees"):
            if getattr(self, name) < 1:
                raise ValueError(f"search.{name} must be >= 1, got {getattr(self, name)}")
        if self.backup not in BACKUPS:
            raise ValueError(f"search.backup must be one of {BACKUPS}, got {self.backup!r}")
        if self.expansion_samples < 0 or self.stop_incorrect < 0 or self.min_iterations < 0:
            raise ValueError("search: expansion_samples, stop_incorrect and min_iterations must be >= 0")
        if self.max_sequences_per_call < 0:
            raise ValueError("search.max_sequences_per_call must be >= 0 (0 = no limit)")
        if self.c_puct < 0 or self.expansion_temperature < 0 or self.rollout_temperature < 0:
            raise ValueError("search: c_puct and temperatures must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("search.top_p must be in (0, 1]")
