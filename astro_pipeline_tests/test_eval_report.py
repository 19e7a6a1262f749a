"""The report renders with RL metrics, without them, and with no data at all."""

from __future__ import annotations

import re

import polars as pl

from astro_pipeline.evaluate import score_completions
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.evaluate.report import build_report


_verifier = FakeVerifier()  # the last box equals the gold


def _counter(text: str) -> tuple[int, int]:
    return text.count("Wait"), text.count("go back")


def _stage_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Three stages on two benchmarks; later stages backtrack more and are right more often."""
    problems = pl.DataFrame({"problem_id": [f"q{i}" for i in range(6)], "problem": ["?"] * 6,
                             "answer": [str(i) for i in range(6)]})
    scores, gens = [], []
    for bench in ("math500", "synthetic_test"):
        for level, stage in enumerate(("base", "sft", "rl")):
            rows = []
            for i in range(6):
                for s in range(4):
                    right = (i + s) % 4 <= level  # base 1/4 of samples right, sft 2/4, rl 3/4
                    back = " Wait, let us go back." * (level if right else 0)
                    rows.append({"problem_id": f"q{i}", "sample": s, "completion": f"{back} \\boxed{{{i if right else 9}}}",
                                 "n_tokens": 20 + 10 * level + s, "finish_reason": "length" if s == 3 and level == 0 else "stop"})
                rows.append({"problem_id": f"q{i}", "sample": -1, "completion": f"\\boxed{{{i}}}", "n_tokens": 15,
                             "finish_reason": "stop"})
            r = score_completions(problems, pl.DataFrame(rows), _verifier, benchmark=bench, stage=stage,
                                  model_path=f"/m/{stage}", reflection_counter=_counter)
            scores.append(r.scores)
            gens.append(r.generations)
    return pl.concat(scores), pl.concat(gens)


RL_METRICS = pl.DataFrame({
    "stage": ["sft"] * 2 + ["rl"] * 9,
    "step": [1, 2] + [1, 2, 3] * 3,
    "name": ["loss", "loss"] + ["reward"] * 3 + ["reward_std"] * 3 + ["completions/mean_length"] * 3,
    "value": [2.0, 1.5, -0.5, 0.0, 0.4, 0.9, 0.8, 0.7, 40.0, 42.0, 47.0],
})


def _images(html: str) -> list[str]:
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_report_with_rl_metrics(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores, gens, RL_METRICS, tmp_path / "report")
    assert res.skipped == {}
    assert [p.name for p in res.plot_paths] == [
        "accuracy_by_stage.png", "backtracks_histogram.png", "backtracks_vs_accuracy.png", "rl_reward.png", "rl_length.png"]
    for p in res.plot_paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    md = res.markdown_path.read_text()
    assert md == res.markdown
    # leaderboard: base pass@1 = 6/24 = 25.0%, sft 50.0%, rl 75.0%; ± stderr is 0 (every problem the same)
    assert "| math500 | rl | 6 | 4 | 75.0 ± 0.0 |" in md
    assert "| synthetic_test | base | 6 | 4 | 25.0 ± 0.0 |" in md
    # the paper's table, then ours with the same rows and the sample size of every cell
    assert "| ASTRO-RL | 81.8 | 64.4 | 30.0 |" in md and "13.3 or 16.3 [1]" in md
    assert "| ASTRO-RL | rl | 75.0 ± 0.0 (6 of 500 x 4) | 0% | 75% | 75.0 ± 0.0 (6 x 4) | 0% | 75% |" in md
    # images: relative links in Markdown (files exist), embedded in HTML (no relative links)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == [f"plots/{p.name}" for p in res.plot_paths]
    assert all((res.markdown_path.parent / link).is_file() for link in links)
    html = res.html_path.read_text()
    assert len(_images(html)) == 5 and 'src="plots/' not in html
    assert "<table>" in html and "75.0 ± 0.0" in html
    # settings and versions are reported, stages in pipeline order
    assert "/m/rl" in md and "polars" in md
    settings = md.split("## Sampling settings")[1].split("##")[0]
    assert [line.split(" | ")[1] for line in settings.splitlines() if line.startswith("| math500")] == ["base", "sft", "rl"]


def test_report_without_rl_metrics(tmp_path):
    scores, gens = _stage_frames()
    for metrics in (RL_METRICS.filter(pl.col("stage") != "rl"), pl.DataFrame()):
        res = build_report(scores, gens, metrics, tmp_path / "r")
        assert set(res.skipped) == {"rl_reward", "rl_length"}
        assert len(res.plot_paths) == 3 and len(_images(res.html_path.read_text())) == 3
        assert "Plot 'RL reward' skipped" in res.markdown


def test_report_with_no_data_at_all(tmp_path):
    res = build_report(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), tmp_path / "empty")
    assert res.plot_paths == [] and len(res.skipped) == 5
    assert "No evaluation scores yet." in res.markdown and res.html_path.is_file()


def test_report_without_counted_backtracks(tmp_path):
    scores, gens = _stage_frames()
    gens = gens.with_columns(pl.lit(0, pl.Int64).alias("n_backtracks"))
    scores = scores.with_columns(pl.lit(False).alias("backtracks_counted"), pl.lit(0.0).alias("mean_backtracks"))
    res = build_report(scores, gens, RL_METRICS, tmp_path / "nb")
    assert set(res.skipped) == {"backtracks_histogram", "backtracks_vs_accuracy"}
    assert "accuracy_by_stage.png" in [p.name for p in res.plot_paths]


def test_report_tolerates_missing_optional_columns(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores.drop("greedy", "stderr", "versions_json"), gens.drop("n_reflections"),
                       RL_METRICS.drop("step").head(0), tmp_path / "cols")
    assert "| math500 | rl | 6 | 4 | 75.0 |" in res.markdown  # no stderr column: no ± part
    assert "Library versions (all runs): not recorded." in res.markdown
