"""evaluate_model with a scripted test-double backend: columns, greedy handling, sample counts,
seeds, batching, overlap plumbing, and hand-computed scores."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

import polars as pl
import pytest

from astro_pipeline.evaluate import GENERATIONS_SCHEMA, SCORES_SCHEMA, EvalSettings, evaluate_model, score_completions
from astro_pipeline.seeds import derive_seed
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.llm.protocol import GenerationRequest, Sample
from astro_pipeline.verify.extract import last_boxed_content


class ScriptedEvalBackend:
    """TEST DOUBLE of the Backend protocol (not a model): deterministic texts.

    For problem "Add A and B." the texts are fixed by (A, sample index, greedy?):
    * sampled sample i answers A+B (correct) when i < A, else A+B+1 (wrong); sample 0 says
      "go back" once (a backtrack), sample 1 says "Wait" once (a reflection);
    * for A == 3 the last sampled text (i == 3) carries 50 filler words, so it exceeds a small
      max_new_tokens and is cut (finish "length"), losing its box;
    * greedy (temperature 0) answers correctly unless A == 2, and says "Wait ... go back".
    Every text ends with "[seed=S]" (the request's seed), so tests can see which seed was used.
    Tokens are whitespace-separated words.
    """

    name = "scripted-eval"

    def __init__(self) -> None:
        self.calls: list[list[GenerationRequest]] = []

    def render(self, request: GenerationRequest) -> str:
        return "\n".join(m["content"] for m in request.messages or ())

    def _text(self, problem: str, i: int, greedy: bool, seed: int | None) -> str:
        a, b = map(int, re.findall(r"\d+", problem))
        if greedy:
            ans = a + b if a != 2 else a + b + 1
            body = f"Wait, is that right? Let us go back. So \\boxed{{{ans}}}"
        else:
            ans = a + b if i < a else a + b + 1
            extra = {0: "Let us go back.", 1: "Wait."}.get(i, "")
            filler = " filler" * 50 if (a == 3 and i == 3) else ""
            body = f"{extra}{filler} So \\boxed{{{ans}}}"
        return f"{body} [seed={seed}]"

    def generate(self, requests):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            problem = [m["content"] for m in r.messages if m["role"] == "user"][-1]
            samples = []
            for i in range(r.params.n):
                words = self._text(problem, i, r.params.temperature == 0, r.params.seed).split(" ")
                finish = "stop"
                if len(words) > r.params.max_new_tokens:
                    words, finish = words[: r.params.max_new_tokens], "length"
                samples.append(Sample(" ".join(words), finish, len(words), -0.1 * len(words)))
            out.append(samples)
        return out


exact_verifier = FakeVerifier()  # the last box equals the gold string


def count_reflections(text: str) -> tuple[int, int]:
    return text.count("Wait"), text.count("go back")


PROBLEMS = pl.DataFrame(
    {
        "dataset": ["toy"] * 3,
        "problem_id": ["p0", "p1", "p2"],
        "problem": ["Add 1 and 5.", "Add 2 and 5.", "Add 3 and 5."],
        "answer": ["6", "7", "8"],
    }
)
SETTINGS = EvalSettings(n_samples=4, temperature=0.7, top_p=0.9, max_new_tokens=20, maj_k=4, batch_size=2, seed=11,
                        system_prompt="Be brief.")


def run(problems=PROBLEMS, settings=SETTINGS, counter=count_reflections, backend=None, progress=None):
    backend = backend or ScriptedEvalBackend()
    result = evaluate_model(
        backend, problems, settings, exact_verifier, benchmark="toy", stage="sft", model_path="/models/sft",
        reflection_counter=counter, progress=progress,
    )
    return result, backend


def test_columns_counts_and_greedy_rows():
    calls = []
    result, backend = run(progress=lambda done, total: calls.append((done, total)))
    g = result.generations
    assert dict(g.schema) == GENERATIONS_SCHEMA and dict(result.scores.schema) == SCORES_SCHEMA
    assert g.height == 3 * (4 + 1)
    for pid in ["p0", "p1", "p2"]:
        rows = g.filter(pl.col("problem_id") == pid)
        assert sorted(rows["sample"].to_list()) == [-1, 0, 1, 2, 3]
        greedy = rows.filter(pl.col("greedy"))
        assert greedy.height == 1 and greedy["sample"].item() == -1
    assert set(g["benchmark"]) == {"toy"} and set(g["stage"]) == {"sft"}
    # batching: 2 problems then 1; each batch = sampled requests (n=4) then greedy ones (n=1, T=0)
    assert [len(c) for c in backend.calls] == [4, 2]
    first = backend.calls[0]
    assert [r.params.n for r in first] == [4, 4, 1, 1]
    assert [r.params.temperature for r in first] == [0.7, 0.7, 0.0, 0.0]
    assert first[0].params.top_p == 0.9 and first[0].params.max_new_tokens == 20
    assert first[0].messages == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add 1 and 5."})
    # one seed per problem, shared by its sampled and greedy requests, derived from (seed, id)
    assert first[0].params.seed == first[2].params.seed == derive_seed(11, "evaluate", "p0")
    assert first[1].params.seed == derive_seed(11, "evaluate", "p1") != derive_seed(11, "evaluate", "p0")
    assert calls == [(2, 3), (3, 3)]


def test_scores_by_hand():
    result, _ = run()
    s = result.score
    # sampled correct: p0 1/4, p1 2/4, p2 3/4 -> pass@1 = (0.25 + 0.5 + 0.75)/3 = 0.5
    assert s["pass_at_1"] == pytest.approx(0.5)
    # deviations -0.25, 0, 0.25 -> squares sum 0.125; /2 = 0.0625; /3 = 0.0208333; sqrt = 0.1443376
    assert s["stderr"] == pytest.approx(0.1443376, abs=1e-6)
    # maj@4: p0 [6,7,7,7] -> 7 wrong; p1 [7,7,8,8] tie -> 7 (earlier) right; p2 [8,8,8,cut] -> 8 right: 2/3
    assert s["maj_at_k"] == pytest.approx(2 / 3) and s["k"] == 4
    # greedy: right for A=1 and A=3, wrong for A=2 -> 2/3
    assert s["greedy"] == pytest.approx(2 / 3)
    # p2's sample 3 has 50 filler words > 20 tokens -> cut, 1 of 12 sampled completions, no answer
    assert s["truncated_share"] == pytest.approx(1 / 12) and s["no_answer_share"] == pytest.approx(1 / 12)
    # "go back" in each problem's sample 0 -> 3 backtracks over 12 sampled; "Wait" in each sample 1 -> 3/12
    assert s["mean_backtracks"] == pytest.approx(0.25) and s["mean_reflections"] == pytest.approx(0.25)
    assert s["backtracks_counted"] is True
    assert (s["n_problems"], s["n_samples"], s["temperature"], s["top_p"], s["seed"]) == (3, 4, 0.7, 0.9, 11)
    assert s["model_path"] == "/models/sft" and s["backend"] == "scripted-eval"
    assert json.loads(s["settings_json"])["system_prompt"] == "Be brief."
    assert "polars" in json.loads(s["versions_json"]) and s["created_at"].endswith("Z")
    cut = result.generations.filter(pl.col("finish_reason") == "length")
    assert cut["problem_id"].to_list() == ["p2"] and cut["sample"].to_list() == [3]
    assert cut["verdict"].to_list() == ["no_answer"] and cut["n_tokens"].to_list() == [20]
    greedy = result.generations.filter(pl.col("greedy")).sort("problem_id")
    assert greedy["n_backtracks"].to_list() == [1, 1, 1] and greedy["correct"].to_list() == [True, False, True]


def test_samples_do_not_depend_on_batch_or_order():
    a, _ = run()
    b, _ = run(problems=PROBLEMS.reverse(), settings=EvalSettings(**{**SETTINGS.__dict__, "batch_size": 1}))
    cols = ["problem_id", "sample", "completion", "correct"]
    assert a.generations.select(cols).sort("problem_id", "sample").equals(b.generations.select(cols).sort("problem_id", "sample"))
    c, _ = run(settings=EvalSettings(**{**SETTINGS.__dict__, "seed": 12}))
    assert not a.generations["completion"].equals(c.generations["completion"])


def test_greedy_off_maj_k_clamped_and_no_counter():
    settings = EvalSettings(**{**SETTINGS.__dict__, "greedy": False, "maj_k": 8, "max_problems": 2})
    result, backend = run(settings=settings, counter=None)
    s = result.score
    assert result.generations.height == 2 * 4 and not result.generations["greedy"].any()
    assert s["greedy"] is None and s["k"] == 4 and s["n_problems"] == 2
    assert s["backtracks_counted"] is False and s["mean_backtracks"] == 0.0
    assert all(r.params.temperature > 0 for c in backend.calls for r in c)


def test_backend_returning_too_few_samples_is_an_error():
    class Short(ScriptedEvalBackend):
        def generate(self, requests):
            return [samples[:-1] for samples in super().generate(requests)]

    with pytest.raises(RuntimeError, match="samples"):
        run(backend=Short())


def test_verify_many_objects_with_enum_verdicts():
    class V(str, enum.Enum):
        correct = "correct"
        wrong = "wrong"
        no_answer = "no_answer"

    @dataclass
    class Verification:
        verdict: V
        predicted_answer: str | None

    class Batch:
        def __init__(self):
            self.pairs = []

        def verify_many(self, pairs):
            self.pairs += pairs
            out = []
            for gold, resp in pairs:
                ans = last_boxed_content(resp)
                out.append(Verification(V.no_answer if ans is None else V.correct if ans == gold else V.wrong, ans))
            return out

    verifier = Batch()
    result = evaluate_model(ScriptedEvalBackend(), PROBLEMS, SETTINGS, verifier, benchmark="toy", stage="rl", model_path="m")
    assert result.score["pass_at_1"] == pytest.approx(0.5)
    assert set(result.generations["verdict"]) == {"correct", "wrong", "no_answer"}
    assert all(gold in {"6", "7", "8"} for gold, _ in verifier.pairs)  # gold goes first


def test_score_completions_truncation_policy_and_missing_problems():
    problems = pl.DataFrame({"problem_id": ["a", "b"], "problem": ["x", "y"], "answer": ["1", "2"]})
    completions = pl.DataFrame(
        {"problem_id": ["a", "b"], "sample": [0, 0], "completion": ["\\boxed{1}", "\\boxed{2}"],
         "finish_reason": ["length", "stop"], "n_tokens": [5, 3]}
    )
    lenient = score_completions(problems, completions, exact_verifier, benchmark="t", stage="base")
    assert lenient.score["pass_at_1"] == 1.0 and lenient.score["truncated_share"] == 0.5
    strict = score_completions(problems, completions, exact_verifier, benchmark="t", stage="base",
                               settings=EvalSettings(n_samples=1, truncated_is_wrong=True))
    assert strict.score["pass_at_1"] == 0.5 and strict.score["mean_tokens"] == 4.0
    with pytest.raises(ValueError, match="no sampled completion"):
        score_completions(problems, completions.head(1), exact_verifier, benchmark="t", stage="base")
    uneven = pl.concat([completions, completions.head(1).with_columns(pl.lit(1, pl.Int64).alias("sample"))])
    with pytest.raises(ValueError, match="different numbers"):
        score_completions(problems, uneven, exact_verifier, benchmark="t", stage="base")


def test_real_phrase_bank_counter_and_real_verifier():
    """Integration: the cloning stage's reflection detector and the process-pool BatchVerifier."""
    from astro_pipeline.evaluate.reflections import phrase_bank_counter
    from astro_pipeline.verify import BatchVerifier, VerifySettings

    class Reflecting(ScriptedEvalBackend):
        def _text(self, problem, i, greedy, seed):
            a, b = map(int, re.findall(r"\d+", problem))
            wrong = f"{a} + {b} = {a + b + 1}."
            back = "Wait, is this solution right so far? Hmm, I am not sure. Let's go back to where we started and try again."
            right = f"{a} + {b} = {a + b}.\n\nSo the answer is \\boxed{{\\frac{{{2 * (a + b)}}}{{2}}}}."
            return f"{wrong}\n\n{back}\n\n{right}" if i % 2 else right

    settings = EvalSettings(n_samples=2, max_new_tokens=200, maj_k=2, greedy=False, batch_size=3)
    with BatchVerifier(VerifySettings(workers=1)) as verifier:
        result = evaluate_model(Reflecting(), PROBLEMS, settings, verifier, benchmark="toy", stage="sft",
                                model_path="m", reflection_counter=phrase_bank_counter())
    g = result.generations.sort("problem_id", "sample")
    # \frac{12}{2} = 6 etc.: needs math-verify in a worker, not the plain-number fast path
    assert g["verdict"].to_list() == ["correct"] * 6 and g["answer"].to_list()[0] == "\\frac{12}{2}"
    # sample 1 of each problem reflects once and backtracks once; sample 0 does neither
    assert g["n_backtracks"].to_list() == [0, 1] * 3 and g["n_reflections"].to_list() == [0, 1] * 3
    assert result.score["mean_backtracks"] == 0.5 and result.score["backtracks_counted"] is True
    assert result.timings["score_s"] > 0 and result.timings["generate_s"] >= 0


def test_scoring_of_a_batch_overlaps_generation_of_the_next():
    """Deterministic check of the overlap: the verifier of batch i blocks until generate() of
    batch i+1 has started. Sequential code would never start it, and the wait would time out."""
    import threading

    started = [threading.Event() for _ in range(4)]
    seen: list[bool] = []

    class Signalling(ScriptedEvalBackend):
        def generate(self, requests):
            started[len(self.calls)].set()
            return super().generate(requests)

    calls = {"n": 0}

    def waiting_verifier_many(pairs):
        j = calls["n"]
        calls["n"] += 1
        if j + 1 < 3:  # 3 batches of 1 problem; the last batch has no next generate call
            seen.append(started[j + 1].wait(timeout=10))
        return exact_verifier.verify_many(pairs)

    class Verifier:
        verify_many = staticmethod(waiting_verifier_many)

    settings = EvalSettings(**{**SETTINGS.__dict__, "batch_size": 1})
    result = evaluate_model(Signalling(), PROBLEMS, settings, Verifier(), benchmark="toy", stage="sft", model_path="m")
    assert seen == [True, True] and result.generations.height == 15


def test_no_problems_gives_an_empty_result_not_an_error():
    result, backend = run(problems=PROBLEMS.head(0))
    assert result.generations.height == 0 and backend.calls == []
    assert result.score["n_problems"] == 0 and result.score["pass_at_1"] is None
