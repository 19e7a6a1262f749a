"""`astro bench generate --backend vllm`'s parts on the session's engine: the recorded MCTS request
set shares prefixes, and both backends replay it with their figures. No timing is asserted (the
figure depends on who else uses the cores); the README records a measured one."""

from __future__ import annotations

import pytest

from astro_pipeline.search.settings import SearchSettings

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_both_backends_replay_one_recorded_mcts_request_set(vllm_backend, hf_backend):
    from astro_pipeline.bench.generate_vllm import compare_on_calls, record_mcts_calls, request_set_shape, synthetic_problems

    search = SearchSettings(k=3, m=2, iterations=2, max_step_tokens=16, max_rollout_tokens=32, parallel_trees=2)
    calls = record_mcts_calls(vllm_backend, synthetic_problems(2), search)
    assert len(calls) >= 2 * search.iterations - 1  # an expansion and a rollout call per iteration
    shape = request_set_shape(calls, hf_backend)
    # siblings and rollouts share their parent's prompt: most prompt tokens were seen before
    assert shape["requests"] > 2 and shape["prompt_tokens_shared_share"] > 0.5
    result = compare_on_calls(vllm_backend, hf_backend, calls, repeats=1)
    print({k: v for k, v in result.items()})
    assert result["vllm_tokens"] > 0 and result["transformers_tokens"] > 0
    assert result["ratio"] == pytest.approx(result["vllm_tokens_per_s"] / result["transformers_tokens_per_s"], rel=1e-2)
    assert result["cpu"] and len(result["load_before"]) == 3
