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
    assert len(out["ratios"]) == 3 and all(r > 0 for r in out["ratios"]) and 0 <= out["outside_generation_share"] <= 1
    assert out["ratio"] == sorted(out["ratios"])[1]  # the median round's ratio, not any positive number


def test_search_efficiency_counts_tokens_yield_and_search_examples_per_setting():
    import dataclasses

    from astro_pipeline.bench.search_efficiency import PAPER_SCALED, run_setting
    from astro_pipeline.cloning import CloningSettings
    from astro_pipeline.testing import FakeVerifier

    def guesses(problem: str, prefix: str, i: int) -> str:  # one guess step, then its boxed check
        guess = prefix.split()[1] if prefix else str(i % 4)
        return ("" if prefix else f"guess {guess}\n\n") + f"so \\boxed{{{guess}}}"

    problems = pl.DataFrame({"dataset": ["toy"] * 4, "problem_id": [str(i) for i in range(4)],
                             "problem": [f"q{i}" for i in range(4)], "answer": ["2"] * 4})
    efficient = SearchSettings(k=4, m=1, iterations=4, expansion_samples=8, stop_incorrect=2)
    paper = dataclasses.replace(efficient, **PAPER_SCALED)
    cloning = CloningSettings()
    e = run_setting(ScriptedBackend(guesses), problems, efficient, cloning, FakeVerifier())
    p = run_setting(ScriptedBackend(guesses), problems, paper, cloning, FakeVerifier())
    assert e["problems"] == p["problems"] == 4
    assert e["yield"] == p["yield"] == 1.0  # every tree holds the right guess and wrong ones
    assert e["search_examples"] > 0 and p["search_examples"] > 0
    assert e["tokens"] < p["tokens"]  # merging, rollout nodes and the early stop waste less
    assert e["stop_reasons"] == {"cloning_ready": 4} and e["merged_samples"] > 0
    assert e["tokens_per_search_example"] == e["tokens"] / e["search_examples"]
