"""The transformers backend against the generation protocol, on tiny models built on the fly."""

from __future__ import annotations

import math

import pytest
import torch

from astro_pipeline.llm import Backend, BackendSettings, GenerationRequest, SamplingParams
from astro_pipeline.llm.transformers_backend import TransformersBackend
from astro_pipeline_tests.tiny_models import demo_tokenizer, scripted_model, sharp_random_model, tiny_random_model

PROBLEM = "Start with 7.\nA: Multiply by 3.\nB: Subtract 4."


def _chat(problem: str = PROBLEM, prefix: str = "", **params) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": problem},), prefix=prefix, params=SamplingParams(**params))


@pytest.fixture(scope="module")
def backend() -> TransformersBackend:
    return TransformersBackend(settings=BackendSettings(threads=1), model=tiny_random_model(), tokenizer=demo_tokenizer())


def test_is_a_backend_and_renders_the_chat_template_plus_prefix(backend):
    assert isinstance(backend, Backend)
    text = backend.render(_chat(prefix="A: 7 * 3 = 21\n\n"))
    assert text == f"<|user|>\n{PROBLEM}\n<|assistant|>\nA: 7 * 3 = 21\n\n"
    assert backend.render(GenerationRequest(prompt="Start with 2.", prefix=" A")) == "Start with 2. A"
    # the prompt ends in the same tokens as the same text inside a training example
    ids = backend.encode(_chat(prefix="A: 7 * 3 = 21\n\n"))
    nl = backend.tokenizer.convert_tokens_to_ids("Ċ")
    assert ids[-2:] == [nl, nl]


def test_n_samples_per_request_in_order_with_counts(backend):
    reqs = [_chat(n=3, temperature=1.0, max_new_tokens=7, seed=1), GenerationRequest(prompt="Start with 4.", params=SamplingParams(n=2, temperature=0.8, max_new_tokens=5, seed=2))]
    out = backend.generate(reqs)
    assert [len(o) for o in out] == [3, 2]
    for samples, req in zip(out, reqs):
        for s in samples:
            assert 1 <= s.n_tokens <= req.params.max_new_tokens
            assert s.finish_reason in ("stop", "length")
            assert (s.finish_reason == "length") == (s.n_tokens == req.params.max_new_tokens and s.stop_string is None) or s.finish_reason == "stop"
            assert math.isfinite(s.logprob) and s.logprob < 0
    assert len({s.text for s in out[0]}) > 1  # samples of one request differ


def test_same_seed_same_output_different_seed_differs_and_batch_independent(backend):
    req = _chat(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    a = backend.generate([req])[0]
    b = backend.generate([req])[0]
    assert a == b
    c = backend.generate([_chat(n=4, temperature=1.0, max_new_tokens=12, seed=8)])[0]
    assert [s.text for s in a] != [s.text for s in c]
    # the same request inside a bigger, differently padded batch gives the same samples
    other = GenerationRequest(prompt="Start with 9.\nA: Add 1.\nB: Add 2.\nC: Add 3.", params=SamplingParams(n=3, temperature=1.0, max_new_tokens=20, seed=3))
    mixed = backend.generate([other, req])[1]
    assert [s.text for s in mixed] == [s.text for s in a]
    assert [s.logprob for s in mixed] == pytest.approx([s.logprob for s in a], abs=1e-4)


def test_micro_batching_and_row_pruning_do_not_change_samples():
    model, tok = tiny_random_model(), demo_tokenizer()
    reqs = [_chat(n=3, temperature=1.0, max_new_tokens=15, stop=(".",), seed=11), _chat("Start with 2.\nA: Add 5.", n=5, temperature=0.9, max_new_tokens=9, seed=12)]
    results = []
    for mbs, prune in ((64, 1.0), (2, 0.01), (5, 0.5)):
        b = TransformersBackend(settings=BackendSettings(threads=1, micro_batch_size=mbs, prune_fraction=prune), model=model, tokenizer=tok)
        results.append([[s.text for s in o] for o in b.generate(reqs)])
    assert results[0] == results[1] == results[2]


def test_greedy_matches_model_generate_with_left_padding(backend):
    prompts = [PROBLEM, "Start with 3.\nA: Add 4.\nB: Multiply by 2.\nC: Subtract 1.\nD: Add 9."]
    out = backend.generate([_chat(p, n=1, temperature=0.0, max_new_tokens=12) for p in prompts])
    for p, samples in zip(prompts, out):
        enc = backend.tokenizer(backend.render(_chat(p)), return_tensors="pt", add_special_tokens=False)
        ref = backend.model.generate(**enc, do_sample=False, max_new_tokens=12, pad_token_id=backend.pad_id)
        ref_ids = ref[0, enc["input_ids"].shape[1] :].tolist()
        if backend.tokenizer.eos_token_id in ref_ids:
            ref_ids = ref_ids[: ref_ids.index(backend.tokenizer.eos_token_id)]
        assert samples[0].text == backend.tokenizer.decode(ref_ids, skip_special_tokens=True)


def test_logprob_sums_match_a_forward_pass(backend):
    req = _chat(n=3, temperature=0.7, top_p=0.9, max_new_tokens=10, seed=5)
    prompt_ids = backend.encode(req)
    # recompute from the generated token ids; re-tokenizing the text could split it differently
    from astro_pipeline.llm import transformers_backend as tb

    captured: list = []
    original = tb.TransformersBackend._decode

    def spy(self, rows, prompts):
        original(self, rows, prompts)
        captured.extend(rows)

    tb.TransformersBackend._decode = spy
    try:
        samples = backend.generate([req])[0]
    finally:
        tb.TransformersBackend._decode = original
    for row, s in zip(sorted(captured, key=lambda r: r.sample), samples):
        ids = torch.tensor([prompt_ids + row.tokens])
        with torch.no_grad():
            logp = torch.log_softmax(backend.model(ids).logits[0].float(), dim=-1)
        expected = sum(float(logp[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(row.tokens))
        assert s.n_tokens == len(row.tokens)
        assert s.logprob == pytest.approx(expected, abs=1e-3)


def test_stop_strings_cut_the_text_where_the_unstopped_sample_has_them(backend):
    base = backend.generate([_chat(n=4, temperature=1.0, max_new_tokens=40, seed=21)])[0]
    full = base[0].text
    stop = full[12:14]  # a string the unstopped sample certainly contains
    assert len(stop) == 2
    stopped = backend.generate([_chat(n=4, temperature=1.0, max_new_tokens=40, seed=21, stop=("zzzz", stop))])[0]
    for s_full, s in zip(base, stopped):
        cut = s_full.text.find(stop)
        if cut >= 0:
            assert s.text == s_full.text[:cut]
            assert s.finish_reason == "stop" and s.stop_string == stop
            assert stop not in s.text
            assert s.n_tokens <= s_full.n_tokens
        else:  # same tokens; the sum may differ in float rounding (rows pruned at other times)
            assert (s.text, s.finish_reason, s.n_tokens) == (s_full.text, s_full.finish_reason, s_full.n_tokens)
            assert s.logprob == pytest.approx(s_full.logprob, abs=1e-4)
    assert stopped[0].stop_string == stop


def test_finish_reasons_eos_and_length_and_exact_logprobs():
    tok = demo_tokenizer()
    eos = tok.eos_token_id
    x = tok.convert_tokens_to_ids("7")
    model = scripted_model({eos: 0.5, x: 0.5})
    b = TransformersBackend(settings=BackendSettings(threads=1), model=model, tokenizer=tok)
    samples = b.generate([_chat(n=40, temperature=1.0, max_new_tokens=4, seed=0)])[0]
    reasons = {s.finish_reason for s in samples}
    assert reasons == {"stop", "length"}
    for s in samples:
        assert s.logprob == pytest.approx(s.n_tokens * math.log(0.5), abs=1e-4)
        if s.finish_reason == "length":
            assert s.n_tokens == 4 and s.text == "7777"
        else:  # ended by EOS: EOS is counted but not shown
            assert s.stop_string is None and s.text == "7" * (s.n_tokens - 1)
    # zero budget: nothing generated
    assert b.generate([_chat(n=2, max_new_tokens=0)])[0][0].finish_reason == "length"


def test_top_p_and_temperature_zero():
    tok = demo_tokenizer()
    a, b_, c = (tok.convert_tokens_to_ids(t) for t in ("1", "2", "3"))
    model = scripted_model({a: 0.6, b_: 0.3, c: 0.1})
    b = TransformersBackend(settings=BackendSettings(threads=1), model=model, tokenizer=tok)
    texts = lambda **p: "".join(s.text for s in b.generate([_chat(n=20, max_new_tokens=10, seed=4, **p)])[0])  # noqa: E731
    assert set(texts(temperature=1.0, top_p=0.5)) == {"1"}
    assert set(texts(temperature=1.0, top_p=0.85)) == {"1", "2"}
    assert set(texts(temperature=1.0, top_p=1.0)) == {"1", "2", "3"}
    assert set(texts(temperature=0.0)) == {"1"}


def test_invalid_params_are_rejected(backend):
    with pytest.raises(ValueError):
        backend.generate([_chat(n=0)])
    with pytest.raises(ValueError):
        backend.generate([_chat(top_p=0.0)])
    with pytest.raises(ValueError):
        GenerationRequest(prompt="x", messages=({"role": "user", "content": "x"},))


def test_growing_kv_cache_matches_transformers_dynamic_cache():
    from transformers import DynamicCache

    from astro_pipeline.llm.kv_cache import GrowingLayer, growing_cache

    model = tiny_random_model()
    torch.manual_seed(0)
    ids = torch.randint(10, 300, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    steps = torch.randint(10, 300, (80, 3, 1))  # past the first capacity (prompt + 64 headroom)

    def run(cache):
        m, logits = mask.clone(), []
        with torch.no_grad():
            model(input_ids=ids, attention_mask=m, position_ids=(m.cumsum(-1) - 1).clamp(min=0), past_key_values=cache)
            pos = m.sum(-1, keepdim=True)
            rows = 3
            for i in range(80):
                if i == 40:  # drop row 1 midway, as the backend does with finished rows
                    keep = torch.tensor([0, 2])
                    cache.batch_select_indices(keep)
                    m, pos, rows = m[keep], pos[keep], 2
                m = torch.cat([m, m.new_ones((rows, 1))], dim=-1)
                tok = steps[i][[0, 2]] if rows == 2 else steps[i]
                logits.append(model(input_ids=tok, attention_mask=m, position_ids=pos, past_key_values=cache).logits[[0, -1]])
                pos = pos + 1
        return torch.stack(logits)

    grown = growing_cache(model.config)
    assert all(isinstance(layer, GrowingLayer) for layer in grown.layers)
    assert torch.allclose(run(DynamicCache(config=model.config)), run(grown), atol=1e-5)


# prefix reuse ------------------------------------------------------------------------------------
SIBLING_STEPS = ("A: 7 * 3 = 21\n\n", "A: 7 times 3 is 21\n\n", "B: 21 - 4 = 17\n\n", "A: 21\n\n")


def _mcts_shaped(**params) -> list[GenerationRequest]:
    """What one search call looks like: per problem, nodes at several depths, each with its
    siblings (the node's prompt plus one step), each asked for n samples."""
    out = []
    for problem in (PROBLEM, "Start with 2.\nA: Add 5.", "Start with 11.\nA: Subtract 6.\nB: Multiply by 4."):
        for depth in range(3):
            for step in SIBLING_STEPS:
                out.append(_chat(problem, prefix="".join(SIBLING_STEPS[:depth]) + step, **params))
    return out


def _run_modes(reqs, modes=("off", "prompt", "prefix"), mbs=(64, 7)):
    model, tok = sharp_random_model(), demo_tokenizer()  # greedy output that depends on the prompt
    runs = {}
    for mode in modes:
        for m in mbs:
            b = TransformersBackend(settings=BackendSettings(threads=1, prefix_reuse=mode, micro_batch_size=m), model=model, tokenizer=tok)
            runs[mode, m] = (b.generate(reqs), b.stats)
    return runs


def _view(out):
    return [[(s.text, s.finish_reason, s.n_tokens, s.stop_string) for s in o] for o in out]


def test_prefix_reuse_greedy_output_identical_with_and_without_reuse():
    # fp32, greedy, with stop strings and a token budget: every mode and micro-batch size gives the
    # same texts, finish reasons, token counts and stop strings; log-probabilities up to rounding
    reqs = _mcts_shaped(n=2, temperature=0.0, max_new_tokens=16, stop=("U", "Subtract"))  # both occur with the demo vocabulary
    runs = _run_modes(reqs)
    ref_out, _ = runs["off", 64]
    ends = {(s.finish_reason, s.stop_string) for o in ref_out for s in o}
    assert ends == {("stop", "U"), ("stop", "Subtract"), ("stop", None), ("length", None)}  # stop strings, EOS, budget
    assert len({o[0].text for o in ref_out}) > 0.8 * len(reqs)  # the output depends on the prompt
    for (mode, mbs), (out, _) in runs.items():
        assert _view(out) == _view(ref_out), (mode, mbs)
        for o, r in zip(out, ref_out):
            assert [s.logprob for s in o] == pytest.approx([s.logprob for s in r], abs=1e-4)


def test_prefix_reuse_counts_less_prompt_work():
    reqs = _mcts_shaped(n=4, temperature=1.0, max_new_tokens=4, seed=3)
    runs = _run_modes(reqs, mbs=(64,))
    off, prompt, prefix = (runs[m, 64][1] for m in ("off", "prompt", "prefix"))
    n_rows = sum(r.params.n for r in reqs)
    assert off.rows == prompt.rows == prefix.rows == n_rows
    assert off.prompt_tokens == prompt.prompt_tokens == prefix.prompt_tokens
    # off: every sample's prompt runs; prompt: each distinct prompt once (one micro-batch here)
    assert off.prefill_tokens == off.prompt_tokens
    b = TransformersBackend(settings=BackendSettings(threads=1), model=sharp_random_model(), tokenizer=demo_tokenizer())
    distinct = {tuple(b.encode(r)) for r in reqs}
    assert prompt.prefill_tokens == sum(len(p) for p in distinct) == off.prompt_tokens // 4
    # prefix: siblings' shared prefixes once more; the saving is what the counter says it is
    assert prefix.shared_prefix_tokens > 0
    assert prefix.prefill_tokens == prompt.prefill_tokens - prefix.shared_prefix_tokens
    assert prefix.prefill_tokens < 0.6 * prompt.prefill_tokens
    assert prefix.prefill_positions < prompt.prefill_positions < off.prefill_positions
    assert prefix.generated_tokens == prompt.generated_tokens == off.generated_tokens == n_rows * 4


def test_prefix_reuse_keeps_seeded_samples_and_batch_independence():
    reqs = _mcts_shaped(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=9, stop=("\n\n",))
    runs = _run_modes(reqs)
    ref_out, _ = runs["off", 64]
    for key, (out, _) in runs.items():
        assert [[s.text for s in o] for o in out] == [[s.text for s in o] for o in ref_out], key
    assert len({s.text for o in ref_out for s in o}) > 0.8 * sum(len(o) for o in ref_out)
    # one request alone gives the samples it gets inside the shared-prefix batch
    model, tok = sharp_random_model(), demo_tokenizer()
    b = TransformersBackend(settings=BackendSettings(threads=1, prefix_reuse="prefix"), model=model, tokenizer=tok)
    alone = b.generate([reqs[5]])[0]
    assert [s.text for s in alone] == [s.text for s in runs["prefix", 64][0][5]]


def test_two_pass_prefill_builds_the_one_pass_cache():
    from astro_pipeline.llm.transformers_backend import _Row, _two_pass_plan

    model, tok = sharp_random_model(), demo_tokenizer()
    reqs = _mcts_shaped()[:4] + [_chat("Start with 5.")]  # four siblings and one unrelated prompt
    backends = {m: TransformersBackend(settings=BackendSettings(threads=1, prefix_reuse=m), model=model, tokenizer=tok)
                for m in ("prompt", "prefix")}
    prompts = [backends["prompt"].encode(r) for r in reqs]
    families = [0, 0, 0, 0, 1]
    assert _two_pass_plan(prompts, families) is not None
    rows = [_Row(i, 0, i, f, 0, 0.0, 1.0, 1, ()) for i, f in enumerate(families)]
    got = {}
    with torch.inference_mode():
        for mode, b in backends.items():
            got[mode] = b._prefill(rows, prompts)
    (c1, l1, m1), (c2, l2, m2) = got["prompt"], got["prefix"]
    assert torch.equal(m1, m2)
    assert torch.allclose(l1, l2, atol=1e-5)
    real = m1.bool()
    for a, b_ in zip(c1.layers, c2.layers):
        assert a.keys.shape == b_.keys.shape
        assert torch.allclose(a.keys.transpose(1, 2)[real], b_.keys.transpose(1, 2)[real], atol=1e-5)
        assert torch.allclose(a.values.transpose(1, 2)[real], b_.values.transpose(1, 2)[real], atol=1e-5)
    assert backends["prefix"].stats.prefill_passes == 2 and backends["prompt"].stats.prefill_passes == 1


def test_families_and_the_two_pass_plan():
    from astro_pipeline.llm.transformers_backend import _families, _two_pass_plan

    node = list(range(100, 140))
    prompts = [node + [1, 2, 3], [7, 7, 7, 7], node + [1, 5], node + [9] * 10, [7, 7, 8, 8]]
    family, rank = _families(prompts)
    assert family[0] == family[2] == family[3] != family[1] == family[4]  # the [7, 7, ..] pair shares half
    assert family[1] < family[0]  # shorter families first
    assert sorted(rank) == list(range(5))
    # no shared prefix, or sharing too little to pay for padding: one pass
    assert _two_pass_plan([[1, 2, 3], [4, 5, 6]], [0, 1]) is None
    assert _two_pass_plan([[1, 2], [1, 3]], [0, 0]) is None  # 1 + 2 x (1 + 1) positions vs 2 x 2
    group, cut = _two_pass_plan([node + [1, 2, 3], node + [1, 5], [9] * 30], [0, 0, 1])
    assert group == [0, 0, 1] and cut[:2] == [41, 41]  # the shared prefix; each keeps >= 1 own token
    assert 30 - cut[2] <= 2  # a prompt without a partner puts no more than the widest suffix last
