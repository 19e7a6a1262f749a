"""The MCTS benchmark on the scripted backend double (fast); the real model runs in the slow test."""

from __future__ import annotations

import polars as pl

from astro_pipeline.bench.mcts import bench_mcts
from astro_pipeline.search.scripted import ScriptedBackend
from astro_pipeline.search.settings import SearchSettings


def script(problem: str, prefix: str, i: int) -> str:
    depth = prefix.count("\n\n")
    return "\n\n".join([f"s{d} {i}" for d in range(depth, 2)] + [f"so \\boxed{{{i % 3}}}"])


def test_bench_replays_the_same_calls():
    problems = pl.DataFrame({"dataset": ["toy"] * 5, "problem_id": [str(i) for i in range(5)],
                             "problem": [f"q{i}" for i in range(5)], "answer": ["0"] * 5})
    backend = ScriptedBackend(script)
    out = bench_mcts(backend, problems, SearchSettings(k=3, m=2, iterations=4, parallel_trees=2), repeats=3)
    assert out["problems"] == 5
    # the replay issues exactly the search's calls (after one warm-up call), and the double is
    # deterministic, so it generates exactly the same number of tokens
    assert len(backend.calls) == 1 + 3 * 2 * out["generate_calls"]
    assert out["raw_tokens"] == out["mcts_tokens"] > 0
    assert out["ratio"] > 0 and len(out["ratios"]) == 3 and 0 <= out["outside_generation_share"] <= 1
