"""The vLLM backend's pure parts, without vLLM: the request/output mapping and the engine options with
the CPU build's rules. The engine itself is tested in test_vllm_engine.py (in .venv-vllm)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from astro_pipeline.llm import BackendSettings, GenerationRequest, SamplingParams
from astro_pipeline.llm.vllm_backend import sample_from_output, supported_engine_options, vllm_prompt, vllm_sampling_kwargs
from astro_pipeline.llm.vllm_options import GIB, engine_options


def test_sampling_params_map_one_to_one():
    kw = vllm_sampling_kwargs(SamplingParams(n=8, temperature=0.7, top_p=0.95, max_new_tokens=64, stop=("\n\n",), seed=3))
    assert kw == {
        "n": 8,
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 64,
        "stop": ["\n\n"],
        "seed": 3,
        "logprobs": 0,
        "include_stop_str_in_output": False,
        "skip_special_tokens": True,
    }
    assert vllm_sampling_kwargs(SamplingParams(temperature=0.0))["temperature"] == 0.0
    with pytest.raises(ValueError):
        vllm_sampling_kwargs(SamplingParams(max_new_tokens=0))
    assert vllm_prompt((1, 2, 3)) == {"prompt_token_ids": [1, 2, 3]}


def _completion(text, token_ids, finish, stop_reason=None, cumulative=None, logprobs=None):
    return SimpleNamespace(text=text, token_ids=token_ids, finish_reason=finish, stop_reason=stop_reason,
                           cumulative_logprob=cumulative, logprobs=logprobs)


def test_outputs_map_to_samples():
    by_stop = sample_from_output(_completion("A: 7 * 3 = 21", [5, 6, 7, 8], "stop", "\n\n", -1.5), ("\n\n",))
    assert by_stop == type(by_stop)("A: 7 * 3 = 21", "stop", 4, -1.5, "\n\n")
    by_eos = sample_from_output(_completion("B: 9", [5, 2], "stop", None, -0.25), ("\n\n",))
    assert (by_eos.finish_reason, by_eos.stop_string, by_eos.n_tokens) == ("stop", None, 2)
    by_eos_id = sample_from_output(_completion("B: 9", [5, 2], "stop", 2, -0.25), ())
    assert by_eos_id.stop_string is None  # an int stop_reason is a stop token id, not a string
    cut = sample_from_output(_completion("x" * 10, list(range(10)), "length", None, -3.0), ())
    assert (cut.finish_reason, cut.n_tokens, cut.logprob) == ("length", 10, -3.0)


def test_logprob_summed_from_per_token_entries_when_no_cumulative():
    entries = [{5: SimpleNamespace(logprob=-0.5)}, {9: SimpleNamespace(logprob=-1.25)}]
    s = sample_from_output(_completion("ab", [5, 9], "length", None, None, entries), ())
    assert s.logprob == pytest.approx(-1.75)
    with pytest.raises(RuntimeError):
        sample_from_output(_completion("", [], "abort"), ())


def test_engine_options_follow_settings_on_gpu():
    s = BackendSettings(name="vllm", tensor_parallel_size=4, gpu_memory_utilization=0.7, max_model_len=8192)
    opts = engine_options(s, "/models/x")
    kw = opts.kwargs
    assert kw["tensor_parallel_size"] == 4 and kw["enable_prefix_caching"] is True and kw["model"] == "/models/x"
    assert kw["gpu_memory_utilization"] == 0.7 and kw["max_model_len"] == 8192 and kw["logprobs_mode"] == "raw_logprobs"
    assert "kv_cache_memory_bytes" not in kw and "enable_chunked_prefill" not in kw and opts.notes == ()
    assert "max_model_len" not in engine_options(BackendSettings(name="vllm"), "m").kwargs
    sized = engine_options(BackendSettings(name="vllm", kv_cache_gib=2.5), "m").kwargs
    assert sized["kv_cache_memory_bytes"] == int(2.5 * GIB)


def test_engine_options_on_cpu_apply_the_cpu_rules_with_a_note_each():
    s = BackendSettings(name="vllm", tensor_parallel_size=8, gpu_memory_utilization=0.9, kv_cache_gib=0.5)
    opts = engine_options(s, "m", on_cpu=True, nodes=2)
    kw = opts.kwargs
    assert "gpu_memory_utilization" not in kw and kw["kv_cache_memory_bytes"] == GIB // 2
    assert kw["enable_chunked_prefill"] is False  # what makes per-request seeds safe on the CPU build
    assert kw["tensor_parallel_size"] == 2 and kw["dtype"] == "float32"
    assert len(opts.notes) == 4
    assert any("tensor_parallel_size 8 -> 2" in n for n in opts.notes)
    assert any("CPU Generator does not use offset" in n for n in opts.notes)
    # defaults: 1 GiB of KV cache, one worker, an explicit dtype kept
    plain = engine_options(BackendSettings(name="vllm", dtype="bfloat16"), "m", on_cpu=True, nodes=1)
    assert plain.kwargs["kv_cache_memory_bytes"] == GIB and plain.kwargs["tensor_parallel_size"] == 1
    assert plain.kwargs["dtype"] == "bfloat16" and len(plain.notes) == 2
    with pytest.raises(ValueError):
        BackendSettings(name="vllm", kv_cache_gib=-1)


def test_options_the_installed_vllm_lacks_are_dropped_with_a_note():
    class FakeLLM:
        def __init__(self, model, tensor_parallel_size=1, **kwargs):
            pass

    names = supported_engine_options(SimpleNamespace(LLM=FakeLLM))
    assert names == {"self", "model", "tensor_parallel_size", "kwargs"}
    opts = engine_options(BackendSettings(name="vllm"), "m", supported=names)
    assert opts.kwargs == {"model": "m", "tensor_parallel_size": 1}
    assert any("enable_prefix_caching dropped" in n for n in opts.notes)
