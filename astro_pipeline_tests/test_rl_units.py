"""RL stage, fast unit tests: reward signs and truncation, gold errors, prompt selection, guards, settings.

Test doubles used here (documented as such):
* ``ScriptedBackend``: a stand-in for the project's ``Backend`` protocol that returns, per problem,
  a fixed script of sample texts/finish reasons; it records the requests it was given.
* ``RecordingVerifier``: wraps a verifier and records the pairs it is asked about (to check gold first).
The reward tests use the real ``astro_pipeline.verify.BatchVerifier`` (integer answers are decided by
its in-process fast path, so no worker processes start).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import polars as pl
import pytest

from astro_pipeline.config import from_dict
from astro_pipeline.llm.protocol import Sample
from astro_pipeline.train.rewards import CorrectnessReward, UnparsableGoldError, check_golds
from astro_pipeline.train.rl import measure_solve_rates, select_prompts, selection_counts
from astro_pipeline.train.rl_guards import check_guards
from astro_pipeline.train.rl_settings import RLSettings
from astro_pipeline.verify import BatchVerifier, VerifySettings

EOS, PAD = 1, 0


@pytest.fixture(scope="module")
def verifier():
    with BatchVerifier(VerifySettings(workers=1)) as bv:
        yield bv


class RecordingVerifier:
    def __init__(self, inner):
        self.inner = inner
        self.pairs: list[tuple[str, str]] = []

    def verify_many(self, pairs):
        self.pairs.extend(pairs)
        return self.inner.verify_many(pairs)


# ---------------------------------------------------------------------------------------------
# reward


def test_reward_signs_correct_wrong_no_answer(verifier):
    reward = CorrectnessReward(verifier, truncation="penalize", eos_token_ids=[EOS, PAD])
    completions = ["A: 3 + 4 = 7\n\nThe answer is \\boxed{7}", "The answer is \\boxed{8}", "I do not know"]
    ids = [[5, 6, EOS], [5, EOS], [7, EOS]]
    assert reward(completions, ["7", "7", "7"], completion_ids=ids) == [1.0, -1.0, -1.0]
    assert reward.last_batch.verdicts == ["correct", "wrong", "no_answer"]


def test_reward_accepts_chat_completions_and_puts_gold_first(verifier):
    rec = RecordingVerifier(verifier)
    reward = CorrectnessReward(rec)
    chat = [[{"role": "assistant", "content": "so \\boxed{12}"}], [{"role": "assistant", "content": "\\boxed{3}"}]]
    assert reward(chat, ["12", "4"]) == [1.0, -1.0]
    assert rec.pairs == [("12", "so \\boxed{12}"), ("4", "\\boxed{3}")]


@pytest.mark.parametrize("mode, expected", [("penalize", [-1.0, -1.0, 1.0]), ("mask", [1.0, -1.0, 1.0])])
def test_truncated_completions_follow_the_setting(verifier, mode, expected):
    reward = CorrectnessReward(verifier, truncation=mode, eos_token_ids=[EOS, PAD])
    # 1st: correct but cut (no EOS at the end); 2nd: cut and wrong; 3rd: correct and finished
    completions = ["\\boxed{7} and then on and on", "\\boxed{9} and on", "\\boxed{7}"]
    ids = [[5, 6, 7], [5, 6], [5, EOS]]
    logged: dict[str, float] = {}
    got = reward(completions, ["7"] * 3, completion_ids=ids, log_metric=logged.__setitem__)
    assert got == expected
    assert reward.last_batch.truncated == [True, True, False]
    assert logged["truncated_share"] == pytest.approx(2 / 3)
    assert logged["accuracy"] == pytest.approx(2 / 3)  # the verifier's view, before any penalty


def test_truncation_from_explicit_flags_and_pad_ending(verifier):
    reward = CorrectnessReward(verifier, truncation="penalize", eos_token_ids=[EOS, PAD])
    assert reward(["\\boxed{7}", "\\boxed{7}"], ["7", "7"], truncated=[True, False]) == [-1.0, 1.0]
    # TRL's rule: ending in the pad id is not truncation
    assert reward(["\\boxed{7}"], ["7"], completion_ids=[[4, PAD]]) == [1.0]
    assert reward(["\\boxed{7}"], ["7"], completion_ids=[[]]) == [-1.0]


def test_unparsable_or_blank_gold_raises_never_rewards(verifier):
    strict = BatchVerifier(VerifySettings(workers=1, max_answer_chars=4))
    try:
        reward = CorrectnessReward(strict)
        with pytest.raises(UnparsableGoldError, match="unparsable gold"):
            reward(["\\boxed{12345}"], ["12345"])  # gold longer than max_answer_chars: unparsable
        with pytest.raises(UnparsableGoldError):
            check_golds(strict, ["7", "123456"])
    finally:
        strict.close()
    reward = CorrectnessReward(verifier)
    with pytest.raises(UnparsableGoldError, match="blank"):
        reward(["\\boxed{7}"], [""])
    with pytest.raises(UnparsableGoldError):
        reward(["\\boxed{7}"], [None])
    check_golds(verifier, ["7", "12", "7"])  # fine


def test_reward_logs_reflection_metrics(verifier):
    seen = []

    def counter(text):
        seen.append(text)
        return text.count("Wait"), text.count("go back")

    reward = CorrectnessReward(verifier, reflection_counter=counter)
    logged: dict[str, float] = {}
    reward(["Wait, go back. \\boxed{7}", "Wait. Wait. \\boxed{1}"], ["7", "7"], log_metric=logged.__setitem__)
    assert logged["reflections_per_completion"] == pytest.approx(1.5)
    assert logged["backtracks_per_completion"] == pytest.approx(0.5)
    assert len(seen) == 2


def test_reward_rejects_unknown_truncation_mode(verifier):
    with pytest.raises(ValueError):
        CorrectnessReward(verifier, truncation="ignore")


# ---------------------------------------------------------------------------------------------
# prompt selection


class ScriptedBackend:
    """Test double of the Backend protocol: per problem, a fixed list of (text, finish_reason)."""

    name = "scripted"

    def __init__(self, scripts: dict[str, list[tuple[str, str]]]):
        self.scripts = scripts
        self.requests = []

    def render(self, request):
        return request.messages[0]["content"]

    def generate(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            script = self.scripts[r.messages[0]["content"]]
            assert len(script) == r.params.n
            out.append([Sample(text=t, finish_reason=f, n_tokens=5, logprob=-1.0) for t, f in script])
        return out


def _script(n_right: int, n: int = 8, cut_right: int = 0) -> list[tuple[str, str]]:
    right = [("\\boxed{5}", "stop")] * (n_right - cut_right) + [("\\boxed{5} and", "length")] * cut_right
    return right + [("\\boxed{4}", "stop")] * (n - n_right)


def _problems(rights: list[int]) -> tuple[pl.DataFrame, dict]:
    rows = [{"problem_id": f"p{i}", "problem": f"problem {i}", "answer": "5"} for i in range(len(rights))]
    scripts = {f"problem {i}": _script(k) for i, k in enumerate(rights)}
    return pl.DataFrame(rows), scripts


def test_select_prompts_keeps_moderate_rates(verifier):
    problems, scripts = _problems([0, 1, 4, 7, 8])
    backend = ScriptedBackend(scripts)
    settings = RLSettings(select_samples=8, min_solve_rate=0.125, max_solve_rate=0.875, select_batch_size=2)
    measured = measure_solve_rates(backend, problems, settings, verifier)
    assert measured["solve_rate"].to_list() == [0.0, 0.125, 0.5, 0.875, 1.0]
    assert measured["selection"].to_list() == ["too_hard", "selected", "selected", "selected", "too_easy"]
    counts = selection_counts(measured)
    assert (counts["too_hard"], counts["too_easy"], counts["selected"], counts["over_cap"]) == (1, 1, 3, 0)
    # the requests: one user message per problem, n samples, the selection sampling settings, own seeds
    assert len(backend.requests) == 5
    assert all(r.messages == ({"role": "user", "content": f"problem {i}"},) for i, r in enumerate(backend.requests))
    assert {r.params.n for r in backend.requests} == {8}
    assert {r.params.temperature for r in backend.requests} == {settings.temperature}
    assert {r.params.max_new_tokens for r in backend.requests} == {settings.max_completion_length}
    assert len({r.params.seed for r in backend.requests}) == 5
    selected = select_prompts(ScriptedBackend(scripts), problems, settings, verifier)
    assert selected["problem_id"].to_list() == ["p1", "p2", "p3"]
    assert selected["solve_rate"].to_list() == [0.125, 0.5, 0.875]
    assert "selection" not in selected.columns


def test_select_prompts_cap_prefers_informative_rates(verifier):
    problems, scripts = _problems([1, 2, 4, 5, 7])
    settings = RLSettings(select_samples=8, max_prompts=2, prompt_priority="informative")
    measured = measure_solve_rates(ScriptedBackend(scripts), problems, settings, verifier)
    kept = measured.filter(pl.col("selection") == "selected")["problem_id"].to_list()
    assert kept == ["p2", "p3"]  # rates 0.5 and 0.625 are closest to 0.5
    assert selection_counts(measured)["over_cap"] == 3
    random_pick = measure_solve_rates(
        ScriptedBackend(scripts), problems, RLSettings(select_samples=8, max_prompts=2, prompt_priority="random"), verifier
    )
    assert (random_pick["selection"] == "selected").sum() == 2


def test_truncated_samples_count_as_unsolved(verifier):
    problems = pl.DataFrame([{"problem": "q", "answer": "5"}])
    backend = ScriptedBackend({"q": _script(4, cut_right=3)})
    measured = measure_solve_rates(backend, problems, RLSettings(select_samples=8), verifier)
    assert measured["n_correct"].to_list() == [1]
    assert measured["n_truncated"].to_list() == [3]


def test_select_prompts_raises_on_unparsable_gold(verifier):
    problems = pl.DataFrame([{"problem": "q", "answer": "  "}])
    with pytest.raises(UnparsableGoldError):
        measure_solve_rates(ScriptedBackend({"q": _script(4)}), problems, RLSettings(select_samples=8), verifier)


# ---------------------------------------------------------------------------------------------
# guards


def _history(lengths, truncated, rewards):
    return [
        {"step": i + 1, "completions/mean_length": ln, "completions/clipped_ratio": tr, "reward": rw}
        for i, (ln, tr, rw) in enumerate(zip(lengths, truncated, rewards))
    ]


GUARD = RLSettings(max_completion_length=100, max_mean_length=80, max_truncated_share=0.5, min_mean_reward=-0.9,
                   guard_patience=3)


def test_guards_healthy_history_passes():
    h = _history([50, 55, 60, 58, 62], [0.0, 0.1, 0.0, 0.2, 0.1], [-0.5, -0.2, 0.0, 0.1, 0.3])
    assert check_guards(h, GUARD) == []
    assert check_guards([], GUARD) == []


def test_guards_detect_length_explosion():
    h = _history([50, 70, 85, 90, 99], [0.1, 0.2, 0.3, 0.4, 0.45], [0.0] * 5)
    reasons = check_guards(h, GUARD)
    assert len(reasons) == 1 and reasons[0].startswith("length explosion: mean completion length")
    assert "steps 3-5" in reasons[0]
    h = _history([50] * 5, [0.1, 0.6, 0.7, 0.9, 0.2], [0.0] * 5)
    reasons = check_guards(h, GUARD)
    assert len(reasons) == 1 and "truncated share" in reasons[0] and "steps 2-4" in reasons[0]


def test_guards_detect_reward_collapse():
    h = _history([50] * 6, [0.0] * 6, [0.2, -0.95, -1.0, -0.97, -1.0, -1.0])
    reasons = check_guards(h, GUARD)
    assert len(reasons) == 1 and reasons[0].startswith("reward collapse") and "steps 2-4" in reasons[0]


def test_guards_need_consecutive_violations():
    h = _history([90, 50, 90, 50, 90, 90], [0.0] * 6, [-1.0, 0.0, -1.0, 0.0, -1.0, -1.0])
    assert check_guards(h, GUARD) == []
    # a missing or NaN value breaks a run
    h = _history([90, 90, math.nan, 90, 90], [0.0] * 5, [0.0] * 5)
    assert check_guards(h, GUARD) == []


def test_guard_default_length_bound_is_90_percent_of_budget():
    s = RLSettings(max_completion_length=100, guard_patience=1)
    assert check_guards(_history([91], [0.0], [0.0]), s) != []
    assert check_guards(_history([89], [0.0], [0.0]), s) == []


# ---------------------------------------------------------------------------------------------
# settings


def test_settings_validation_and_recipe_loading():
    with pytest.raises(ValueError, match="multiple of num_generations"):
        RLSettings(batch_size=10, num_generations=4)
    with pytest.raises(ValueError, match="truncation"):
        RLSettings(truncation="ignore")
    with pytest.raises(ValueError, match="loss_type"):
        RLSettings(loss_type="ppo")
    with pytest.raises(ValueError, match="vllm_server_base_url"):
        RLSettings(use_vllm=True, vllm_mode="server")
    s = from_dict(RLSettings, {"num_generations": 8, "batch_size": 32, "learning_rate": 1, "truncation": "mask"})
    assert (s.num_generations, s.batch_size, s.learning_rate, s.truncation) == (8, 32, 1.0, "mask")
    with pytest.raises(ValueError, match="unknown setting"):
        from_dict(RLSettings, {"kl": 0.1})


def test_guard_callback_stops_and_records(monkeypatch):
    from astro_pipeline.train.rl_guards import GuardCallback

    seen = []
    cb = GuardCallback(GUARD, on_log=lambda step, m: seen.append((step, m["reward"])))
    state = SimpleNamespace(global_step=0, max_steps=10, log_history=[])
    control = SimpleNamespace(should_training_stop=False)
    cb.on_train_begin(None, state, control)
    for step, r in enumerate([0.0, -1.0, -1.0, -1.0], start=1):
        state.global_step = step
        cb.on_log(None, state, control, logs={"reward": r, "completions/mean_length": 10.0, "loss": 0.1})
    cb.on_log(None, state, control, logs={"train_runtime": 1.0, "train_loss": 0.0})  # the final summary: ignored
    assert control.should_training_stop is True
    assert cb.stopped_at == 4 and cb.reasons and cb.reasons[0].startswith("reward collapse")
    assert seen == [(1, 0.0), (2, -1.0), (3, -1.0), (4, -1.0)]
    # a resumed run rebuilds its history from the checkpoint's log_history
    cb2 = GuardCallback(GUARD)
    state2 = SimpleNamespace(global_step=2, max_steps=10, log_history=[{"step": 1, "reward": -1.0}, {"step": 2, "reward": -1.0}, {"step": 2, "train_runtime": 3.0}])
    cb2.on_train_begin(None, state2, control)
    assert [h["step"] for h in cb2.history] == [1.0, 2.0]


def test_reward_with_the_project_reflection_counter(verifier):
    import functools

    from astro_pipeline.cloning.detect import count_reflections
    from astro_pipeline.cloning.settings import CloningSettings

    counter = functools.partial(count_reflections, settings=CloningSettings())
    reflective = (
        "A: 3 + 4 = 8\n\nWait, is this solution right so far? Hmm, I am not sure. "
        "Let's go back to where we computed A and try again.\n\nA: 3 + 4 = 7\n\nThe answer is \\boxed{7}"
    )
    logged: dict[str, float] = {}
    reward = CorrectnessReward(verifier, reflection_counter=counter)
    assert reward([reflective, "A: 3 + 4 = 7\n\nThe answer is \\boxed{7}"], ["7", "7"], log_metric=logged.__setitem__) == [1.0, 1.0]
    assert reward.last_batch.reflections == [1, 0] and reward.last_batch.backtracks == [1, 0]
    assert logged["reflections_per_completion"] == pytest.approx(0.5)
    assert logged["backtracks_per_completion"] == pytest.approx(0.5)


def test_checkpoint_lookup_is_read_only_and_drop_removes_half_written(tmp_path):
    from astro_pipeline.train.runs import drop_incomplete_checkpoints, last_complete_checkpoint

    tmp_path = tmp_path / "checkpoints"
    tmp_path.mkdir()

    for step, state in ((2, '{"global_step": 2}'), (3, '{"global_st'), (4, None), (10, '{"global_step": 10}')):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if state is not None:
            (d / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-10"
    assert drop_incomplete_checkpoints(tmp_path) == []  # only newer-than-complete ones go
    import shutil

    shutil.rmtree(tmp_path / "checkpoint-10")
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3", "checkpoint-4", "checkpoint-x"]
    assert drop_incomplete_checkpoints(tmp_path) == ["checkpoint-4", "checkpoint-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-x"]
    assert last_complete_checkpoint(tmp_path / "missing") is None
