"""Synthetic demo problems: both worlds' formats, exact answers, determinism, disjoint splits."""

from __future__ import annotations

import re

import pytest

from astro_pipeline.config import from_dict
from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.verify import last_boxed_content

SMALL = SyntheticSettings(world="chain", n_pretrain=200, n_train=300, n_test=60, max_value=30, min_steps=3, max_steps=4)
GUESS = SyntheticSettings(n_pretrain=300, n_train=100, n_test=50)
_OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*", "Divide by": "/"}


def _replay(problem: str) -> list[tuple[str, int, str, int, int]]:
    """Recompute a problem from its text: (label, before, symbol, operand, after) per line."""
    lines = problem.split("\n")
    value = int(re.fullmatch(r"Start with (\d+)\.", lines[0]).group(1))
    out = []
    for line in lines[1:]:
        label, verb, operand = re.fullmatch(r"([A-Z]): (Add|Subtract|Multiply by|Divide by) (\d+)\.", line).groups()
        x = int(operand)
        after = {"Add": value + x, "Subtract": value - x, "Multiply by": value * x, "Divide by": value // x}[verb]
        out.append((label, value, _OPS[verb], x, after))
        value = after
    return out


def test_rows_have_the_contract_keys_and_step_format():
    rows = generate_rows("test", SMALL)
    assert len(rows) == SMALL.n_test
    for row in rows:
        assert set(row) == {"id", "problem", "answer", "solution"}
        steps = row["solution"].split("\n\n")
        ops = _replay(row["problem"])
        assert SMALL.min_steps <= len(steps) == len(ops) <= SMALL.max_steps
        for step, (label, before, sym, x, after) in zip(steps, ops):
            assert step.startswith(f"{label}: {before} {sym} {x} = {after}")
            assert SMALL.min_value <= after <= SMALL.max_value
        assert "\\boxed" not in "".join(steps[:-1])
        assert steps[-1].endswith(f"The answer is \\boxed{{{row['answer']}}}")
        assert last_boxed_content(row["solution"]) == row["answer"] == str(ops[-1][-1])


def test_deterministic_under_the_seed_and_seed_sensitive():
    assert generate_rows("train", SMALL) == generate_rows("train", SMALL)
    other = generate_rows("train", SyntheticSettings(world="chain", n_pretrain=0, n_train=300, n_test=60, seed=1))
    assert [r["problem"] for r in other] != [r["problem"] for r in generate_rows("train", SMALL)]


def test_train_and_test_never_share_a_problem_and_have_no_duplicates():
    # a small space (2 steps, few operands) makes collisions likely unless they are prevented
    tight = SyntheticSettings(world="chain", n_pretrain=100, n_train=400, n_test=100, min_steps=2, max_steps=2,
                              operand_max=4, max_value=30)
    splits = {sp: [r["problem"] for r in generate_rows(sp, tight)] for sp in ("pretrain", "train", "test")}
    assert all(len(set(v)) == len(v) for v in splits.values())
    assert not set(splits["train"]) & set(splits["test"])
    assert not set(splits["pretrain"]) & (set(splits["train"]) | set(splits["test"]))
    ids = [r["id"] for sp in ("pretrain", "train", "test") for r in generate_rows(sp, tight)]
    assert len(set(ids)) == len(ids)


def test_impossible_counts_fail_loudly():
    with pytest.raises(ValueError, match="distinct"):
        generate_rows("train", SyntheticSettings(world="chain", n_train=5000, n_test=10, min_steps=1, max_steps=1))


def test_settings_validate_and_load_from_a_recipe_mapping():
    s = from_dict(SyntheticSettings, {"seed": 3, "operations": ["add", "multiply"], "multipliers": [2]})
    assert s.operations == ("add", "multiply") and s.multipliers == (2,)
    rows = generate_rows("test", SyntheticSettings(world="chain", n_test=40, n_train=10, operations=("add", "divide"),
                                                   multipliers=(2,), max_value=30))
    assert all(re.search(r"(Add|Divide by) \d", r["problem"]) for r in rows)
    assert "Subtract" not in "".join(r["problem"] for r in rows)
    with pytest.raises(ValueError):
        SyntheticSettings(operations=("power",))
    with pytest.raises(ValueError):
        generate_rows("validation", SMALL)


def test_guess_check_problems_are_solved_by_trying_the_right_x():
    from astro_pipeline.data.synthetic_check import judge_attempt, parse_problem

    for row in generate_rows("test", GUESS):
        problem = parse_problem(row["problem"])
        assert problem is not None and (problem.low, problem.high) == (GUESS.start_min, GUESS.start_max)
        assert GUESS.min_steps <= len(problem.ops) <= GUESS.max_steps
        steps = row["solution"].split("\n\n")
        assert steps[0] == f"Try x = {row['answer']}." and judge_attempt(problem, steps) == "honest"
        assert steps[-1] == f"The result is {problem.result} and we got {problem.result}, so the answer is \\boxed{{{row['answer']}}}"
        assert last_boxed_content(row["solution"]) == row["answer"]


def test_guess_check_every_x_keeps_every_value_in_range_so_wrong_guesses_compute_alike():
    from astro_pipeline.data.synthetic import compute, split_keys

    for x_true, ops in split_keys("train", GUESS):
        for x in range(GUESS.start_min, GUESS.start_max + 1):
            assert all(GUESS.min_value <= v <= GUESS.max_value for v in compute(x, ops))
        results = {compute(x, ops)[-1] for x in range(GUESS.start_min, GUESS.start_max + 1)}
        assert len(results) == GUESS.start_max - GUESS.start_min + 1  # the answer is unique


def test_pretrain_split_is_disjoint_from_search_and_evaluation_problems():
    splits = {sp: {r["problem"] for r in generate_rows(sp, GUESS)} for sp in ("pretrain", "train", "test")}
    assert len(splits["pretrain"]) == GUESS.n_pretrain
    assert not splits["pretrain"] & splits["train"] and not splits["pretrain"] & splits["test"]
    assert not splits["train"] & splits["test"]
    # growing a later split never changes an earlier one
    bigger = SyntheticSettings(n_pretrain=600, n_train=100, n_test=50)
    assert generate_rows("train", bigger) == generate_rows("train", GUESS)


def test_check_documents_state_the_value_beside_the_result_with_the_right_verdict():
    from astro_pipeline.data.synthetic import check_rows
    from astro_pipeline.data.synthetic_check import judge_attempt, parse_problem

    settings = SyntheticSettings(world="guess_check")
    rows = check_rows(40, settings)
    verdicts = []
    for row in rows:
        find = row["problem"].replace(row["problem"].splitlines()[0], f"Find x from {settings.start_min} to {settings.start_max}.")
        steps = row["solution"].split("\n\n")
        assert judge_attempt(parse_problem(find), steps) == "honest", row  # correct arithmetic and verdict
        verdicts.append("is not the answer" not in steps[-1])
    assert 0 < sum(verdicts) < len(verdicts)  # both right and wrong candidates are checked


def test_miss_documents_are_honest_failed_attempts_under_the_problems_own_prompt():
    from astro_pipeline.data.synthetic import miss_rows
    from astro_pipeline.data.synthetic_check import judge_attempt, parse_problem

    settings = SyntheticSettings(world="guess_check")
    for row in miss_rows(40, settings):
        problem = parse_problem(row["problem"])  # the "Find x from 1 to 9." prompt of search and evaluation
        assert problem is not None, row["problem"]
        steps = row["solution"].split("\n\n")
        assert judge_attempt(problem, steps) == "honest", row
        assert steps[-1].endswith("is not the answer")  # a miss, and nothing after it (no retry: not search)
        assert f"The result is {problem.result} and we got" in steps[-1]


def test_extra_pretraining_documents_never_use_a_train_or_test_operation_chain():
    from astro_pipeline.data.synthetic import check_rows, held_out_ops, miss_rows, tabulate_rows
    from astro_pipeline.data.synthetic_check import parse_problem
    from astro_pipeline.train.demo_corpus import forward_documents

    settings = SyntheticSettings(world="guess_check", n_pretrain=200, n_train=100, n_test=50)
    held = {tuple((sym, n) for _, sym, n in parse_problem(r["problem"]).ops)
            for split in ("train", "test") for r in generate_rows(split, settings)}
    symbol = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
    assert held == {tuple((symbol[op], n) for op, n in ops) for ops in held_out_ops(settings)}

    def chain_of(problem_text: str) -> tuple:
        lines = problem_text.splitlines()
        find = "\n".join([f"Find x from {settings.start_min} to {settings.start_max}.", *lines[1:]])
        if not lines[-1].startswith("The result is"):
            find += "\nThe result is 0."
        return tuple((sym, n) for _, sym, n in parse_problem(find).ops)

    docs = [r["problem"] for r in check_rows(60, settings) + miss_rows(60, settings) + tabulate_rows(60, settings)]
    assert docs and not {chain_of(p) for p in docs} & held
    chain_docs = [d for d in forward_documents(settings, 120) if d.prompt.startswith("Start with")]
    ops_re = re.compile(r"^[A-Z]: (Add|Subtract|Multiply by|Divide by) (\d+)\.$")
    word = {"Add": "+", "Subtract": "-", "Multiply by": "*", "Divide by": "/"}
    chains = {tuple((word[m.group(1)], int(m.group(2))) for m in map(ops_re.match, d.prompt.splitlines()[1:]))
              for d in chain_docs}
    assert len(chain_docs) == 60 and not chains & held
