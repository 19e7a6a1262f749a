"""The vLLM backend through a real engine (the CPU build here, a GPU build elsewhere), against the
protocol and against the transformers backend, on a briefly trained demo base model
(see vllm_fixture: one engine for the whole session)."""

from __future__ import annotations

import math

import pytest
import torch

from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.llm import GenerationRequest, SamplingParams
from astro_pipeline.search.llm_world import STEP_DELIMITER

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _problems(n: int) -> list[dict]:
    return generate_rows("test", SyntheticSettings(n_train=10, n_test=n))


def _chat(problem: str, prefix: str = "", **params) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": problem},), prefix=prefix,
                             params=SamplingParams(**params))


def _greedy_requests() -> list[GenerationRequest]:
    """24 greedy requests of the three kinds the pipeline sends: 16 whole solutions (evaluation),
    4 continuations of a partial solution (MCTS: the assistant prefix), 4 raw text prompts."""
    rows = _problems(24)
    greedy = dict(temperature=0.0, max_new_tokens=96)
    reqs = [_chat(r["problem"], **greedy) for r in rows[:16]]
    for r in rows[16:20]:
        first_step = r["solution"].split(STEP_DELIMITER)[0]
        reqs.append(_chat(r["problem"], prefix=first_step + STEP_DELIMITER, **greedy))
    reqs += [GenerationRequest(prompt=r["problem"] + "\n", params=SamplingParams(**greedy)) for r in rows[20:]]
    return reqs


def test_engine_runs_with_the_cpu_rules_and_prefix_caching(vllm_backend):
    kw = vllm_backend.engine_kwargs
    assert kw["enable_prefix_caching"] is True and kw["dtype"] == "float32"
    if vllm_backend.on_cpu:
        assert kw["enable_chunked_prefill"] is False and "gpu_memory_utilization" not in kw
        assert kw["kv_cache_memory_bytes"] == 256 << 20
        assert len(vllm_backend.engine_notes) >= 2


def test_greedy_completions_identical_to_the_transformers_backend(vllm_backend, hf_backend):
    reqs = _greedy_requests()
    assert len(reqs) >= 20
    ours, theirs = vllm_backend.generate(reqs), hf_backend.generate(reqs)
    same = [a[0].text == b[0].text for a, b in zip(ours, theirs)]
    print(f"greedy: {sum(same)}/{len(same)} identical")
    assert all(same), [(a[0].text, b[0].text) for a, b, s in zip(ours, theirs, same) if not s][:3]
    for (a,), (b,) in zip(ours, theirs):
        assert (a.finish_reason, a.n_tokens, a.stop_string) == (b.finish_reason, b.n_tokens, b.stop_string)
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3 + 1e-4 * a.n_tokens)
    # the model is trained enough that these are real solutions, not one token repeated
    assert sum("\\boxed{" in a[0].text for a in ours[:16]) >= 12
    assert sum(a[0].finish_reason == "stop" and a[0].stop_string is None for a in ours[:16]) >= 12  # EOS
    assert len({a[0].text for a in ours}) >= 20  # different problems, different solutions (two may coincide)


def test_n_samples_stop_strings_max_tokens_and_finish_reasons(vllm_backend):
    problem = _problems(1)[0]["problem"]
    step = _chat(problem, n=6, temperature=1.0, max_new_tokens=40, stop=(STEP_DELIMITER,), seed=3)
    whole = _chat(problem, n=6, temperature=1.0, max_new_tokens=160, seed=4)
    short = _chat(problem, n=3, temperature=1.0, max_new_tokens=5, seed=5)
    nothing = _chat(problem, n=2, max_new_tokens=0)
    out = vllm_backend.generate([step, whole, short, nothing])
    assert [len(o) for o in out] == [6, 6, 3, 2]
    for req, samples in zip((step, whole, short), out):
        for s in samples:
            assert 1 <= s.n_tokens <= req.params.max_new_tokens and math.isfinite(s.logprob) and s.logprob < 0
            assert s.finish_reason in ("stop", "length")
            if s.finish_reason == "length":  # the budget, never a stop string
                assert s.n_tokens == req.params.max_new_tokens and s.stop_string is None
    # one solution step: ended by the step delimiter, which is not part of the text
    assert sum(s.stop_string == STEP_DELIMITER for s in out[0]) >= 4
    assert all(STEP_DELIMITER not in s.text for s in out[0])
    assert all(s.finish_reason == "stop" for s in out[0] if s.stop_string)
    # whole solutions: ended by EOS (finish "stop", no stop string), EOS not in the text
    assert sum(s.finish_reason == "stop" and s.stop_string is None for s in out[1]) >= 4
    assert all("<|eos|>" not in s.text for s in out[1])
    # a 5-token budget: cut by length
    assert all((s.finish_reason, s.n_tokens) == ("length", 5) for s in out[2])
    assert [(s.text, s.finish_reason, s.n_tokens) for s in out[3]] == [("", "length", 0)] * 2


def test_logprobs_are_the_models_own_before_temperature_and_top_p(vllm_backend, hf_backend, monkeypatch):
    """The summed log-probability of each sample equals a forward pass of the transformers model over
    the same tokens at temperature 1, although the samples were drawn at T = 0.7, top-p 0.9."""
    from astro_pipeline.llm import vllm_backend as vb

    captured = []
    original = vb.sample_from_output

    def spy(completion, stop):
        captured.append(list(completion.token_ids))
        return original(completion, stop)

    monkeypatch.setattr(vb, "sample_from_output", spy)
    req = _chat(_problems(2)[1]["problem"], n=4, temperature=0.7, top_p=0.9, max_new_tokens=48, seed=11)
    samples = vllm_backend.generate([req])[0]
    prompt = hf_backend.encode(req)
    for ids, s in zip(captured, samples):
        assert s.n_tokens == len(ids)
        with torch.no_grad():
            logits = hf_backend.model(torch.tensor([prompt + ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        expected = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(ids))
        assert s.logprob == pytest.approx(expected, abs=1e-3 + 1e-4 * len(ids))


def test_per_request_seeds_reproduce_samples_whatever_the_batch(vllm_backend):
    rows = _problems(6)
    req = _chat(rows[0]["problem"], n=4, temperature=1.0, max_new_tokens=32, seed=7)
    alone = vllm_backend.generate([req])[0]
    assert vllm_backend.generate([req])[0] == alone
    others = [_chat(r["problem"], n=5, temperature=0.9, max_new_tokens=48, seed=100 + i) for i, r in enumerate(rows[1:])]
    mixed = vllm_backend.generate([*others[:2], req, *others[2:]])[2]
    assert [s.text for s in mixed] == [s.text for s in alone]
    assert [s.logprob for s in mixed] == pytest.approx([s.logprob for s in alone], abs=1e-4)
    reseeded = vllm_backend.generate([_chat(rows[0]["problem"], n=4, temperature=1.0, max_new_tokens=32, seed=8)])[0]
    assert [s.text for s in reseeded] != [s.text for s in alone]
    assert len({s.text for s in alone}) > 1  # the n samples of one request differ from each other


def test_invalid_params_are_rejected_before_the_engine(vllm_backend):
    with pytest.raises(ValueError, match="request 0"):
        vllm_backend.generate([_chat("x", n=0)])
