"""Session fixtures of the vLLM engine tests (marker ``vllm``; `make test` runs them in .venv-vllm).

* ``demo_base_dir``: the demo base model (the demo recipe's architecture, tokenizer and training
  code, ``train_base_model``) trained for a few hundred steps only. Not a random model: greedy
  completions of a random one are degenerate (one token repeated, no EOS, no "\\n\\n" step ends, no
  boxed answers), so the tests could not see stop strings, EOS, steps or answers. After 300 steps it
  writes step-by-step solutions with boxed answers and ends them with EOS; how often they are right
  does not matter here.
* ``vllm_backend``: ONE engine on that folder for the whole test session (starting one took
  86-153 s on shared cores with torch.compile, ~40 s eager), prefix caching on, float32, a
  256 MiB KV cache.
* ``hf_backend``: the transformers backend on the same folder, float32, for the comparisons.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PRETRAIN_STEPS = 300


@pytest.fixture(scope="session")
def demo_base_dir(tmp_path_factory) -> Path:
    from astro_pipeline.data.synthetic import SyntheticSettings
    from astro_pipeline.train.pretrain import train_base_model
    from astro_pipeline.train.settings import BaseModelSettings

    out = tmp_path_factory.mktemp("vllm_demo_base") / "base"
    # the demo architecture (hidden 128, 4 layers, head dim 32), corpus and optimiser; fp32 (the
    # comparisons are in fp32); no pass@1 target: a fixed, short budget
    settings = BaseModelSettings(steps=PRETRAIN_STEPS, target_pass_at_1=0.0, precision="fp32", log_every=PRETRAIN_STEPS)
    train_base_model(settings, SyntheticSettings(), out)
    return out


@pytest.fixture(scope="session")
def vllm_backend(demo_base_dir):
    from astro_pipeline.llm.settings import BackendSettings
    from astro_pipeline.llm.vllm_backend import VLLMBackend

    backend = VLLMBackend(
        demo_base_dir,
        BackendSettings(name="vllm", dtype="float32", enforce_eager=True, kv_cache_gib=0.25, enable_prefix_caching=True),
    )
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def hf_backend(demo_base_dir):
    from astro_pipeline.llm.settings import BackendSettings
    from astro_pipeline.llm.transformers_backend import TransformersBackend

    return TransformersBackend(demo_base_dir, BackendSettings(device="cpu", dtype="float32", threads=1))
