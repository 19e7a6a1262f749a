"""RL stage, GRPO runs on a tiny random Llama (built on the fly, nothing downloaded).

Test double (documented as such): ``DigitSevenVerifier`` (``testing.FakeVerifier`` with the
``contains_seven`` rule) says "correct" when the completion contains the character 7 and "no_answer"
otherwise. A random character-level model writes a 7 in roughly
one completion of six, so groups have mixed rewards, advantages are non-zero and the weights move;
with the real verifier every random completion is "no_answer" and GRPO would have nothing to learn.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from astro_pipeline.testing import FakeVerifier, contains_seven
from astro_pipeline.train.rl import SUMMARY_FILE, last_complete_checkpoint, train_rl
from astro_pipeline.train.rl_settings import RLSettings
from astro_pipeline.train.rl_tiny import build_tiny_model, tiny_problems


class DigitSevenVerifier(FakeVerifier):
    """The test kit's fake with the ``contains_seven`` rule (blank gold: unparsable_gold)."""

    def __init__(self):
        super().__init__(contains_seven)


SMALL = dict(batch_size=8, num_generations=4, max_completion_length=12, learning_rate=1e-2, warmup_steps=0,
             lr_scheduler_type="constant", threads=1, save_steps=2, temperature=1.0)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "sft")


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def test_short_grpo_run_saves_reloadable_model_and_logs_metrics(sft_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = RLSettings(max_steps=3, **SMALL)
    logged: list[tuple[int, dict]] = []
    verifier = DigitSevenVerifier()
    counter_calls = []

    def counter(text):
        counter_calls.append(text)
        return (1, 0)

    summary = train_rl(
        str(sft_dir), tiny_problems(8), settings, str(tmp_path / "rl"), work_dir=str(tmp_path / "work"),
        on_log=lambda step, m: logged.append((step, m)), reflection_counter=counter, verifier=verifier,
    )
    assert [s for s, _ in logged] == [1, 2, 3]
    for _, m in logged:
        for key in ("reward", "reward_std", "accuracy", "completions/mean_length", "completions/clipped_ratio",
                    "truncated_share", "reflections_per_completion", "backtracks_per_completion", "loss"):
            assert key in m, key
        assert -1.0 <= m["reward"] <= 1.0
        assert 0 < m["completions/mean_length"] <= settings.max_completion_length
        # the reward's own truncation count agrees with TRL's
        assert m["truncated_share"] == pytest.approx(m["completions/clipped_ratio"])
        assert m["reflections_per_completion"] == pytest.approx(1.0)
        assert "kl" not in m  # beta = 0: no reference model
    assert len(counter_calls) == 3 * settings.batch_size
    assert summary.record["steps_done"] == 3 and summary.record["target_steps"] == 3
    assert summary.record["stopped_by_guard"] is False and summary.record["guard_status"] == "healthy"
    assert [h["step"] for h in summary.record["metrics_history"]] == [1.0, 2.0, 3.0]
    assert summary.record["settings"]["num_generations"] == 4 and "trl" in summary.record["versions"]

    out = tmp_path / "rl"
    on_disk = json.loads((out / SUMMARY_FILE).read_text())
    assert on_disk["fingerprint"] == summary.record["fingerprint"]
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.chat_template and "<|assistant|>" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.config.eos_token_id == tok.eos_token_id
    assert not (out / "training_args.bin").exists()
    before, after = _weights(sft_dir), _weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before), "GRPO did not change the weights"
    assert list((tmp_path / "work" / "tensorboard").glob("events.out.tfevents.*"))
    assert last_complete_checkpoint(tmp_path / "work" / "checkpoints").name == "checkpoint-3"

    # a rerun of the same run resumes from its last checkpoint and trains no step more (transformers 5
    # would train one past max_steps); whether a finished model is reused is the asset's decision
    again = train_rl(str(sft_dir), tiny_problems(8), settings, str(tmp_path / "rl-again"),
                     work_dir=str(tmp_path / "work"), verifier=verifier)
    assert again.resumed_from == "checkpoint-3" and again.steps == 3 and again.fingerprint == summary.fingerprint
    assert all(torch.equal(_weights(tmp_path / "rl-again")[k], after[k]) for k in after)
    # changed settings must not silently resume from the other run's checkpoints
    with pytest.raises(ValueError, match="different run"):
        train_rl(str(sft_dir), tiny_problems(8), RLSettings(max_steps=4, **SMALL), str(tmp_path / "rl2"),
                 work_dir=str(tmp_path / "work"), verifier=verifier)


def test_guard_stops_a_length_explosion(sft_dir, tmp_path):
    # a random model rarely ends a completion: mean length ~ the budget, so a low bound trips
    settings = RLSettings(max_steps=6, max_mean_length=2.0, guard_patience=2, **SMALL)
    logged = []
    summary = train_rl(str(sft_dir), tiny_problems(8), settings, str(tmp_path / "rl"), work_dir=str(tmp_path / "w"),
                       on_log=lambda s, m: logged.append(s), verifier=DigitSevenVerifier())
    assert summary.stopped_by_guard is True and summary.record["stopped_at_step"] == 2
    assert summary.stop_reasons == tuple(summary.record["stop_reasons"])
    assert summary.record["steps_done"] == 2 and logged == [1, 2]
    assert summary.record["stop_reasons"][0].startswith("length explosion")
    assert summary.record["guard_status"] == "tripped"
    assert (tmp_path / "rl" / "model.safetensors").is_file()


def test_kl_is_logged_when_beta_is_positive(sft_dir, tmp_path):
    logged = []
    settings = RLSettings(max_steps=2, beta=0.1, **SMALL)
    train_rl(str(sft_dir), tiny_problems(8), settings, str(tmp_path / "rl"), work_dir=str(tmp_path / "w"),
             on_log=lambda s, m: logged.append(m), verifier=DigitSevenVerifier())
    assert len(logged) == 2 and all("kl" in m and m["kl"] >= 0 for m in logged)


def test_unparsable_gold_fails_before_training(sft_dir, tmp_path):
    import polars as pl

    prompts = tiny_problems(4).with_columns(pl.Series("answer", ["3", "", "5", "6"]))
    with pytest.raises(ValueError, match="blank gold"):
        train_rl(str(sft_dir), prompts, RLSettings(max_steps=1, **SMALL), str(tmp_path / "rl"),
                 work_dir=str(tmp_path / "w"), verifier=DigitSevenVerifier())
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_bench_grpo_reports_phase_shares_and_ratio():
    from astro_pipeline.bench.grpo import bench_grpo

    r = bench_grpo(steps=1, warmup_steps=1, batch_size=8, num_generations=4, max_completion_length=8,
                   verifier=DigitSevenVerifier())
    for side in ("grpo", "raw"):
        shares = [r[side][f"{p}_share"] for p in ("generation", "reward", "optimization")]
        assert sum(shares) == pytest.approx(1.0)
        assert r[side]["generation_s"] > 0 and r[side]["completions_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["grpo"]["completions_per_s"] / r["raw"]["completions_per_s"])


_RUN = textwrap.dedent(
    """
    import json, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_rl_train import DigitSevenVerifier
    from astro_pipeline.train.rl import train_rl
    from astro_pipeline.train.rl_settings import RLSettings
    from astro_pipeline.train.rl_tiny import tiny_problems
    # a random model fills its budget: the length guards would stop it, and this test is about resuming
    settings = RLSettings(max_steps={steps}, guards_enabled=False, **{small!r})
    summary = train_rl({sft!r}, tiny_problems(8), settings, {out!r}, work_dir={work!r}, verifier=DigitSevenVerifier())
    print("SUMMARY", json.dumps(summary.record))
    """
)


def _script(tmp_path: Path, sft: Path, name: str, steps: int) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(_RUN.format(tests=str(Path(__file__).parent), steps=steps, small=SMALL, sft=str(sft),
                                out=str(tmp_path / name / "rl"), work=str(tmp_path / name / "work")))
    return path


def _summary(proc_stdout: str) -> dict:
    line = [ln for ln in proc_stdout.splitlines() if ln.startswith("SUMMARY ")][-1]
    return json.loads(line[len("SUMMARY "):])


@pytest.mark.slow
def test_kill_and_resume_continues_from_last_checkpoint(sft_dir, tmp_path):
    steps = 24
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # the reference: the same run, uninterrupted
    ref = subprocess.run([sys.executable, str(_script(tmp_path, sft_dir, "ref", steps))], env=env,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = _summary(ref.stdout)

    script = _script(tmp_path, sft_dir, "killed", steps)
    ckpts = tmp_path / "killed" / "work" / "checkpoints"
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if last_complete_checkpoint(ckpts) is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    killed_at = int(last_complete_checkpoint(ckpts).name.split("-")[1])
    assert killed_at < steps
    assert not (tmp_path / "killed" / "rl").exists()

    rerun = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = _summary(rerun.stdout)
    assert resumed["resumed_from"] is not None
    assert int(resumed["resumed_from"].split("-")[1]) >= killed_at
    assert resumed["steps_done"] == steps
    assert [h["step"] for h in resumed["metrics_history"]] == [float(s) for s in range(1, steps + 1)]
    # nothing skipped or repeated: per-step rewards and lengths match the uninterrupted run
    for key in ("reward", "completions/mean_length"):
        assert [h[key] for h in resumed["metrics_history"]] == pytest.approx(
            [h[key] for h in reference["metrics_history"]], abs=1e-6
        ), key
    w_ref, w_res = _weights(tmp_path / "ref" / "rl"), _weights(tmp_path / "killed" / "rl")
    for k in w_ref:
        assert torch.allclose(w_ref[k], w_res[k], atol=1e-5), k
