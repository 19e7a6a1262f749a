"""One prompt contract: every stage that prompts a model with a problem renders the same text.

The stages (search, evaluation, SFT, RL prompt selection and GRPO, the base-model check, the
backends) all build their messages with ``llm.prompt.chat_messages``; this test renders what each
stage actually hands the model (or TRL) for one problem and compares the texts, with and without a
system prompt.
"""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.llm.prompt import chat_messages, prompt_text, render, render_messages
from astro_pipeline.llm.protocol import GenerationRequest, Sample, SamplingParams
from astro_pipeline.testing import FakeVerifier, build_tiny_model, tiny_tokenizer

PROBLEM = "What is 2 + 3?"


class _Recorder:
    """A backend that records the requests it gets and answers one empty sample per ``n``."""

    def __init__(self):
        self.requests: list[GenerationRequest] = []

    def generate(self, requests):
        self.requests.extend(requests)
        return [[Sample("", "stop", 0, 0.0)] * r.params.n for r in requests]


def _stage_prompts(tok, system_prompt: str) -> dict[str, str]:
    from astro_pipeline.evaluate.run import build_requests
    from astro_pipeline.evaluate.settings import EvalSettings
    from astro_pipeline.search.llm_world import LLMStepWorld, Problem, StepState
    from astro_pipeline.search.settings import SearchSettings
    from astro_pipeline.train.rl import _prompt_dataset, measure_solve_rates
    from astro_pipeline.train.rl_settings import RLSettings
    from astro_pipeline.train.sft import to_conversational

    problems = pl.DataFrame({"problem_id": ["p1"], "problem": [PROBLEM], "answer": ["5"]})
    world = LLMStepWorld(None, None, SearchSettings(system_prompt=system_prompt))
    search = world._request(StepState(Problem("d", "p1", PROBLEM, "5")), "expand", SamplingParams())
    [(_, _, evaluate)] = build_requests(problems, EvalSettings(system_prompt=system_prompt, greedy=False))
    sft = to_conversational(pl.DataFrame({"prompt": [PROBLEM], "completion": ["5"]}), system_prompt)[0]["prompt"]
    grpo = _prompt_dataset(problems, system_prompt)[0]["prompt"]
    recorder = _Recorder()
    measure_solve_rates(recorder, problems, RLSettings(select_samples=1), FakeVerifier(), system_prompt)
    return {
        "search": render(tok, search),
        "evaluate": render(tok, evaluate),
        "sft": render_messages(tok, sft),
        "rl_grpo": render_messages(tok, grpo),
        "rl_selection": render(tok, recorder.requests[0]),
    }


@pytest.mark.parametrize("system_prompt", ["", "Think step by step."])
def test_every_stage_renders_the_same_prompt_for_a_problem(system_prompt):
    tok = tiny_tokenizer()
    expected = prompt_text(tok, PROBLEM, system_prompt)
    assert expected.endswith("<|assistant|>\n") and (system_prompt in expected)
    assert ("<|system|>" in expected) is bool(system_prompt)
    got = _stage_prompts(tok, system_prompt)
    assert got == {stage: expected for stage in got}


def test_base_model_check_pretraining_and_self_evaluation_use_the_contract():
    from astro_pipeline.cloning.selfeval import self_eval_request
    from astro_pipeline.train.base_eval import _requests
    from astro_pipeline.train.pretrain import prompt_text as pretraining_prompt

    tok = tiny_tokenizer()
    [base_check] = _requests([{"problem": PROBLEM, "answer": "5"}], 1, 0.0, 1.0, 8, 0)
    assert render(tok, base_check) == pretraining_prompt(tok, PROBLEM) == prompt_text(tok, PROBLEM)
    vote = self_eval_request(PROBLEM, "5", n_votes=1, temperature=0.0, max_new_tokens=1, seed=0)
    assert vote.messages == chat_messages(vote.messages[-1]["content"]) and PROBLEM in vote.messages[-1]["content"]


def test_the_backends_render_and_encode_through_the_contract(tmp_path):
    from astro_pipeline.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(build_tiny_model(tmp_path / "m")))
    request = GenerationRequest(messages=chat_messages(PROBLEM, "Be brief."), prefix="Step 1:")
    assert backend.render(request) == prompt_text(backend.tokenizer, PROBLEM, "Be brief.") + "Step 1:"
    assert backend.encode(request) == backend.tokenizer(backend.render(request), add_special_tokens=False)["input_ids"]
    raw = GenerationRequest(prompt="2 + 3 =")
    assert backend.render(raw) == "2 + 3 ="
