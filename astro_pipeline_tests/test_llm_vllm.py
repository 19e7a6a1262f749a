"""The vLLM backend: the pure request/output mapping here; the engine itself only on a GPU with vLLM."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from astro_pipeline.llm import BackendSettings, GenerationRequest, SamplingParams
from astro_pipeline.llm.vllm_backend import engine_kwargs, sample_from_output, vllm_prompt, vllm_sampling_kwargs


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


def test_engine_kwargs_follow_settings_and_drop_unknown_options():
    s = BackendSettings(name="vllm", tensor_parallel_size=4, gpu_memory_utilization=0.7, max_model_len=8192)
    kw = engine_kwargs(s, "/models/x")
    assert kw["tensor_parallel_size"] == 4 and kw["enable_prefix_caching"] is True
    assert kw["gpu_memory_utilization"] == 0.7 and kw["max_model_len"] == 8192 and kw["model"] == "/models/x"
    old = engine_kwargs(s, "/models/x", supported={"self", "model", "tensor_parallel_size"})
    assert old == {"model": "/models/x", "tensor_parallel_size": 4}
    assert "max_model_len" not in engine_kwargs(BackendSettings(name="vllm"), "m")


@pytest.mark.gpu
@pytest.mark.vllm
def test_vllm_engine_end_to_end(tmp_path):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from astro_pipeline.llm import make_backend
    from astro_pipeline_tests.tiny_models import demo_tokenizer, tiny_random_model

    tiny_random_model().save_pretrained(tmp_path)
    demo_tokenizer().save_pretrained(tmp_path)
    backend = make_backend(BackendSettings(name="vllm", gpu_memory_utilization=0.3, enforce_eager=True), tmp_path)
    req = GenerationRequest(messages=({"role": "user", "content": "Start with 2."},), params=SamplingParams(n=3, temperature=1.0, max_new_tokens=8, seed=1))
    a, b = backend.generate([req])[0], backend.generate([req])[0]
    assert len(a) == 3 and [s.text for s in a] == [s.text for s in b]
    assert all(math.isfinite(s.logprob) and 1 <= s.n_tokens <= 8 for s in a)


def test_supported_options_come_from_the_installed_llm_signature():
    from astro_pipeline.llm.vllm_backend import _supported_engine_options

    class FakeLLM:
        def __init__(self, model, tensor_parallel_size=1, **kwargs):
            pass

    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("with vLLM installed, its real EngineArgs fields are added")
    names = _supported_engine_options(SimpleNamespace(LLM=FakeLLM))
    assert names == {"self", "model", "tensor_parallel_size", "kwargs"}
    assert engine_kwargs(BackendSettings(name="vllm"), "m", names) == {"model": "m", "tensor_parallel_size": 1}
