"""The LLM step world: MCTS over step-by-step solutions (ASTRO, DESIGN.md §2).

State = the problem plus the steps so far; action = the next step; R(s') = mean verifier reward.

Prompting: the policy sees chat messages ``[system?, {"role": "user", "content": problem}]`` and the
partial solution as the assistant ``prefix``: the steps joined by "\\n\\n", plus a trailing "\\n\\n"
when there is at least one step (so the model starts the next step, not a continuation).

Expansion: ONE generation call for all leaves of all trees; per leaf one request with
n = ``expansion_samples`` (default k), stop = ("\\n\\n",), ``max_step_tokens``. Each sample is a
candidate child whose step is the sample's text verbatim (stop string excluded); its prior logit is
per ``prior_normalization`` (see settings). The core merges samples whose steps are equal up to
whitespace (``action_key``) and keeps at most k distinct children.

When a step is terminal (decided once, when the child is created):

* it contains a complete ``\\boxed{...}`` ("boxed"): its answer is ``last_boxed_content(step)``;
* generation ended by EOS (finish "stop" with no stop string) without a box ("eos"): the model
  ended the solution without an answer, a terminal with no answer, reward 0;
* the step is empty or whitespace only ("empty"): the policy produced no step (e.g. it emitted
  the delimiter right away). Continuing from it would only repeat the same prefix, so it is a
  terminal with no answer, reward 0. It keeps its place among the k siblings (so priors stay
  normalized over what the policy actually sampled and PUCT learns to avoid it); downstream
  code recognizes it by ``step == ""`` and ``answer`` null.
* a step cut by ``max_step_tokens`` ("length") is NOT terminal, but it counts toward the depth;
* the core's depth limit makes any node at ``max_depth`` terminal; without a box it has no answer.

Evaluation: ONE generation call for the rollouts of all new non-terminal children (n = M per
child, no step stop string, ``max_rollout_tokens``, i.e. the whole rest of the solution), then ONE
verifier call for every rollout and terminal of the batch. A rollout is split into steps at the
delimiter and ends at its first step with a complete box (what follows a boxed step is not part of
the solution, exactly as an expanded boxed step is terminal); empty paragraphs are not steps, and a
rollout cut by the token budget loses its unfinished last piece. A response is the full solution
text (prefix + the rollout's steps, or the terminal's steps); one without a complete box scores 0
without being sent to the verifier, so a rollout truncated before its answer is never rewarded
(truncated rollouts are counted in ``WorldStats``). R(s') = mean rollout reward; a terminal's R is
its own verifier reward. "Correct" means reward > 0.5. With ``backup: rollout_nodes`` the split
rollouts go back to the core (``Evaluation.rollouts``), which adds them to the tree.

Seeds: every request's seed is derived from the base seed, the problem and the node's path of
child indices (never from batch position), so a tree does not depend on which other problems were
searched beside it, provided the backend honours per-request seeds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import GenerationRequest, Sample, SamplingParams
from astro_pipeline.search.mcts import Candidate, Evaluation, Rollout
from astro_pipeline.search.metered import MeteredBackend
from astro_pipeline.search.rewards import RewardFn
from astro_pipeline.search.settings import SearchSettings
from astro_pipeline.seeds import derive_seed
from astro_pipeline.verify.extract import last_boxed_content

STEP_DELIMITER = "\n\n"


@dataclass(frozen=True)
class Problem:
    dataset: str
    problem_id: str
    problem: str
    answer: str | None


@dataclass(frozen=True)
class StepState:
    problem: Problem
    steps: tuple[str, ...] = ()
    path: tuple[int, ...] = ()  # child indices from the root: a stable name of the node
    terminal_reason: str | None = None  # "boxed", "eos", "empty" or None

    @property
    def prefix(self) -> str:
        """The assistant text already written: steps joined by the delimiter, plus one more."""
        return STEP_DELIMITER.join(self.steps) + STEP_DELIMITER if self.steps else ""

    @property
    def solution(self) -> str:
        return STEP_DELIMITER.join(self.steps)


@dataclass
class WorldStats:
    expansions: int = 0
    rollouts: int = 0
    rollouts_truncated: int = 0
    verified: int = 0
    verify_seconds: float = 0.0


def step_key(step: str) -> str:
    """Two steps are the same step when they are equal up to whitespace (sibling merging)."""
    return " ".join(step.split())


@dataclass(frozen=True)
class RolloutSteps:
    """A rollout's text split into steps (see the module docstring)."""

    steps: tuple[str, ...]
    terminal_reason: str | None  # "boxed", "eos" or None (cut by the token budget, or no step at all)

    @property
    def text(self) -> str:
        return STEP_DELIMITER.join(self.steps)


def split_rollout(sample: Sample) -> RolloutSteps:
    """The steps of a rollout up to its first boxed step; an unfinished last piece is dropped."""
    pieces = sample.text.split(STEP_DELIMITER)
    ended = sample.finish_reason == "stop"  # EOS (rollouts have no stop strings)
    if not ended:
        pieces = pieces[:-1]  # cut mid-step by the token budget
    steps: list[str] = []
    for piece in pieces:
        if not piece.strip():
            continue
        steps.append(piece)
        if last_boxed_content(piece) is not None:
            return RolloutSteps(tuple(steps), "boxed")
    return RolloutSteps(tuple(steps), "eos" if ended and steps else None)


def terminal_reason(sample: Sample) -> str | None:
    """Why a freshly sampled step ends the solution, or None (see the module docstring)."""
    if not sample.text.strip():
        return "empty"
    if last_boxed_content(sample.text) is not None:
        return "boxed"
    if sample.finish_reason == "stop" and sample.stop_string is None:
        return "eos"
    return None


class LLMStepWorld:
    """The ``World`` of astro_pipeline.search.mcts for a policy LLM and a verifier."""

    def __init__(self, generator: MeteredBackend, reward_fn: RewardFn, settings: SearchSettings) -> None:
        self.generator = generator
        self.reward_fn = reward_fn
        self.settings = settings
        self.stats = WorldStats()

    # helpers -----------------------------------------------------------------------------------
    def root_state(self, problem: Problem) -> StepState:
        return StepState(problem=problem)

    def action_key(self, action: str) -> str:
        return step_key(action)

    def messages(self, problem: Problem) -> tuple[dict[str, str], ...]:
        return chat_messages(problem.problem, self.settings.system_prompt)

    def _request(self, state: StepState, phase: str, params: SamplingParams) -> GenerationRequest:
        seed = derive_seed(self.settings.seed, state.problem.dataset, state.problem.problem_id, state.path, phase)
        return GenerationRequest(
            messages=self.messages(state.problem),
            prefix=state.prefix,
            params=replace(params, seed=seed),
        )

    def prior_logit(self, sample: Sample) -> float:
        mode = self.settings.prior_normalization
        if mode == "sequence":
            return sample.logprob
        if mode == "per_token":
            return sample.logprob / max(sample.n_tokens, 1)
        return 0.0  # uniform

    # World protocol ----------------------------------------------------------------------------
    def is_terminal(self, state: StepState) -> bool:
        return state.terminal_reason is not None

    def expand(self, states: Sequence[StepState]) -> list[list[Candidate]]:
        """k next steps per state, all states in one generation batch."""
        s = self.settings
        params = SamplingParams(
            n=s.expansion_samples or s.k,  # samples drawn; the core keeps at most k distinct children
            temperature=s.expansion_temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_step_tokens,
            stop=(STEP_DELIMITER,),
        )
        outputs = self.generator.generate([self._request(st, "expand", params) for st in states], phase="expand")
        self.stats.expansions += len(states)
        return [[self._candidate(st, i, sample) for i, sample in enumerate(samples)] for st, samples in zip(states, outputs)]

    def _candidate(self, state: StepState, index: int, sample: Sample) -> Candidate:
        child = StepState(
            problem=state.problem,
            steps=(*state.steps, sample.text),
            path=(*state.path, index),
            terminal_reason=terminal_reason(sample),
        )
        info = {"step_logprob": sample.logprob, "step_tokens": sample.n_tokens, "finish_reason": sample.finish_reason}
        return Candidate(action=sample.text, logprob=self.prior_logit(sample), state=child, info=info)

    def evaluate(self, states: Sequence[StepState], terminal: Sequence[bool]) -> list[Evaluation]:
        """R(s'): M rollouts per non-terminal (one generation batch), the verifier for terminals."""
        open_idx = [i for i, t in enumerate(terminal) if not t]
        split = {i: [split_rollout(x) for x in samples] for i, samples in zip(open_idx, self._rollouts([states[i] for i in open_idx]))}
        # every response to score: (state index, full solution text or None when it has no answer)
        to_score: list[tuple[int, str | None]] = []
        for i, rollouts in split.items():
            for r in rollouts:
                to_score.append((i, states[i].prefix + r.text if r.terminal_reason == "boxed" else None))
        for i, t in enumerate(terminal):
            if t:
                to_score.append((i, states[i].solution if self._answer(states[i]) is not None else None))
        rewards = self._score(states, to_score)
        per_state: dict[int, list[float]] = {}
        for (i, _), r in zip(to_score, rewards):
            per_state.setdefault(i, []).append(r)
        out = []
        for i in range(len(states)):
            ev = self._evaluation(states[i], terminal[i], per_state.get(i, []))
            if not terminal[i] and self.settings.backup == "rollout_nodes":
                ev = replace(ev, rollouts=tuple(self._rollout(states[i], j, r, reward)
                                                for j, (r, reward) in enumerate(zip(split[i], per_state[i]))))
            out.append(ev)
        return out

    def _rollout(self, state: StepState, j: int, rollout: RolloutSteps, reward: float) -> Rollout:
        """The core's view of one split rollout: a chain of candidate steps below ``state``."""
        chain: list[Candidate] = []
        st = state
        for n, step in enumerate(rollout.steps):
            last = n == len(rollout.steps) - 1
            st = StepState(problem=state.problem, steps=(*st.steps, step), path=(*st.path, f"r{j}"),
                           terminal_reason=rollout.terminal_reason if last else None)
            chain.append(Candidate(action=step, logprob=0.0, state=st))
        answer = last_boxed_content(rollout.steps[-1]) if rollout.terminal_reason == "boxed" else None
        info = {"answer": answer, "correct": reward > 0.5, "n_rollouts": 0, "rollout_correct": 0,
                "terminal_reason": rollout.terminal_reason}
        return Rollout(steps=tuple(chain), terminal=rollout.terminal_reason is not None, reward=reward, info=info)

    def _rollouts(self, states: Sequence[StepState]) -> list[list[Sample]]:
        s = self.settings
        params = SamplingParams(
            n=s.m,  # M rollouts per new node
            temperature=s.rollout_temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_rollout_tokens,
            stop=(),  # the whole rest of the solution, to EOS or the token cap
        )
        outputs = self.generator.generate([self._request(st, "rollout", params) for st in states], phase="rollout")
        self.stats.rollouts += sum(len(o) for o in outputs)
        self.stats.rollouts_truncated += sum(1 for o in outputs for x in o if x.finish_reason == "length")
        return outputs

    def _score(self, states: Sequence[StepState], to_score: list[tuple[int, str | None]]) -> list[float]:
        """One verifier call for every response that has an answer; the rest score 0."""
        asked = [j for j, (_, text) in enumerate(to_score) if text is not None]
        rewards = [0.0] * len(to_score)
        if asked:
            t0 = time.perf_counter()
            golds = [states[to_score[j][0]].problem.answer or "" for j in asked]  # the gold goes first
            got = self.reward_fn(golds, [to_score[j][1] or "" for j in asked])
            self.stats.verify_seconds += time.perf_counter() - t0
            self.stats.verified += len(asked)
            for j, r in zip(asked, got):
                rewards[j] = float(r)
        return rewards

    @staticmethod
    def _answer(state: StepState) -> str | None:
        return last_boxed_content(state.steps[-1]) if state.steps else None

    def _evaluation(self, state: StepState, is_terminal: bool, rewards: list[float]) -> Evaluation:
        if is_terminal:
            reward = rewards[0] if rewards else 0.0
            info = {"answer": self._answer(state), "correct": reward > 0.5, "n_rollouts": 0, "rollout_correct": 0,
                    "terminal_reason": state.terminal_reason or "depth"}
            return Evaluation(reward, info)
        mean = sum(rewards) / len(rewards) if rewards else 0.0  # R(s') = mean rollout reward
        info = {"answer": None, "correct": None, "n_rollouts": len(rewards),
                "rollout_correct": sum(1 for r in rewards if r > 0.5)}
        return Evaluation(mean, info)
