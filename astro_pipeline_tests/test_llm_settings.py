"""Backend settings, the factory, the bench entry point, and the recipe sections this stage owns."""

from __future__ import annotations

import pytest

from astro_pipeline.config import describe, from_dict
from astro_pipeline.llm import BackendSettings, make_backend
from astro_pipeline.llm.device import free_cores, resolve_dtype, resolve_device
from astro_pipeline.llm.transformers_backend import TransformersBackend
from astro_pipeline_tests.tiny_models import demo_tokenizer, tiny_random_model


def test_settings_validate_and_every_field_has_help():
    assert from_dict(BackendSettings, {"name": "vllm", "tensor_parallel_size": 2}).tensor_parallel_size == 2
    with pytest.raises(ValueError):
        BackendSettings(name="tgi")
    with pytest.raises(ValueError):
        BackendSettings(micro_batch_size=0)
    with pytest.raises(ValueError):
        BackendSettings(prefix_reuse="on")
    assert BackendSettings().prefix_reuse == "prefix"
    with pytest.raises(ValueError):
        from_dict(BackendSettings, {"micro_batch": 4})
    assert all(describe(BackendSettings).values())


def test_device_and_dtype_resolution():
    import torch

    assert resolve_device("cpu").type == "cpu"
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError):
        resolve_dtype("int3", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            resolve_device("cuda")
    assert 1 <= free_cores()


def test_factory_builds_the_named_backend(tmp_path):
    tiny_random_model().save_pretrained(tmp_path)
    demo_tokenizer().save_pretrained(tmp_path)
    backend = make_backend(BackendSettings(threads=1, micro_batch_size=3), tmp_path)
    assert isinstance(backend, TransformersBackend) and backend.settings.micro_batch_size == 3
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="make vllm-env"):
            make_backend(BackendSettings(name="vllm"), tmp_path)


def test_demo_recipe_sections_load():
    from astro_pipeline.recipe import load_recipe

    recipe = load_recipe("demo")
    assert recipe.section("backend").name == "transformers"
    assert recipe.section("base_model").kind == "demo"
    synthetic = recipe.section("synthetic")
    assert synthetic.n_test > 0 and synthetic.min_steps <= synthetic.max_steps


def test_bench_generate_reports_both_rates():
    from astro_pipeline.bench.generate import bench_generate

    result = bench_generate(None, n_prompts=3, samples_per_prompt=2, max_new_tokens=6, repeats=1,
                            backend_settings=BackendSettings(threads=1))
    assert result["model"].startswith("random-init")
    assert result["backend_tokens"] > 0 and result["generate_tokens"] > 0
    assert result["ratio"] == pytest.approx(result["backend_tokens_per_s"] / result["generate_tokens_per_s"], rel=0.01)


def test_bench_backend_flag_picks_the_vllm_benchmark(capsys, monkeypatch):
    import sys

    from astro_pipeline import cli

    assert cli.main(["bench", "sft", "--backend", "vllm"]) == 2  # only generate has a vLLM variant
    assert "no --backend vllm variant" in capsys.readouterr().err
    seen = []
    monkeypatch.setitem(cli.VLLM_BENCHMARKS, "generate", "astro_pipeline_tests.test_llm_settings:_fake_bench")
    monkeypatch.setattr(sys.modules[__name__], "_fake_bench", lambda model: seen.append(model) or {"ratio": 2.0})
    assert cli.main(["bench", "generate", "--backend", "vllm", "--model", "/m"]) == 0
    assert seen == ["/m"] and '"bench": "generate --backend vllm"' in capsys.readouterr().out


def _fake_bench(model):  # replaced per test; the CLI resolves benchmarks by "module:function"
    raise AssertionError("not patched")


def test_bench_prefix_reuse_reports_each_mode_and_the_ratio():
    from astro_pipeline.bench.generate import bench_prefix_reuse
    from astro_pipeline.search.settings import SearchSettings

    search = SearchSettings(k=2, m=2, iterations=2, max_step_tokens=8, max_rollout_tokens=12, parallel_trees=2)
    result = bench_prefix_reuse(None, n_problems=2, repeats=1, search=search, backend_settings=BackendSettings(threads=1))
    modes = result["modes"]
    assert set(modes) == {"off", "prompt", "prefix"}
    off, prompt, prefix = modes["off"], modes["prompt"], modes["prefix"]
    assert off["tokens"] > 0 and off["prompt_tokens_over_samples"] == prompt["prompt_tokens_over_samples"]
    assert off["prefill_tokens"] == off["prompt_tokens_over_samples"]  # off: every sample prefills its prompt
    assert prefix["prefill_tokens"] < prompt["prefill_tokens"] < off["prefill_tokens"]
    assert result["ratio"] == pytest.approx(prefix["tokens_per_s"] / off["tokens_per_s"], rel=0.01)
    assert result["ratio_vs_prompt"] == pytest.approx(prefix["tokens_per_s"] / prompt["tokens_per_s"], rel=0.01)
    assert result["cpu"] and result["request_set"]["sequences"] > result["request_set"]["requests"]


def test_bench_prefix_reuse_flag(capsys, monkeypatch):
    from astro_pipeline import cli
    from astro_pipeline.bench import generate

    assert cli.main(["bench", "sft", "--prefix-reuse"]) == 2
    assert "--prefix-reuse applies to generate" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr(generate, "bench_prefix_reuse", lambda model: seen.append(model) or {"ratio": 1.5})
    assert cli.main(["bench", "generate", "--prefix-reuse", "--model", "/m"]) == 0
    assert seen == ["/m"] and '"bench": "generate --prefix-reuse"' in capsys.readouterr().out
