"""Synthetic demo problems: format, exact answers, determinism, train/test disjointness."""

from __future__ import annotations

import re

import pytest

from astro_pipeline.config import from_dict
from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.verify import last_boxed_content

SMALL = SyntheticSettings(n_train=300, n_test=60)
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
    other = generate_rows("train", SyntheticSettings(n_train=300, n_test=60, seed=1))
    assert [r["problem"] for r in other] != [r["problem"] for r in generate_rows("train", SMALL)]


def test_train_and_test_never_share_a_problem_and_have_no_duplicates():
    # a small space (2 steps, few operands) makes collisions likely unless they are prevented
    tight = SyntheticSettings(n_train=400, n_test=100, min_steps=2, max_steps=2, operand_max=4)
    train = [r["problem"] for r in generate_rows("train", tight)]
    test = [r["problem"] for r in generate_rows("test", tight)]
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)
    ids = [r["id"] for r in generate_rows("train", tight)] + [r["id"] for r in generate_rows("test", tight)]
    assert len(set(ids)) == len(ids)


def test_impossible_counts_fail_loudly():
    with pytest.raises(ValueError, match="distinct"):
        generate_rows("train", SyntheticSettings(n_train=5000, n_test=10, min_steps=1, max_steps=1))


def test_settings_validate_and_load_from_a_recipe_mapping():
    s = from_dict(SyntheticSettings, {"seed": 3, "operations": ["add", "multiply"], "multipliers": [2]})
    assert s.operations == ("add", "multiply") and s.multipliers == (2,)
    rows = generate_rows("test", SyntheticSettings(n_test=40, n_train=10, operations=("add", "divide"), multipliers=(2,)))
    assert all(re.search(r"(Add|Divide by) \d", r["problem"]) for r in rows)
    assert "Subtract" not in "".join(r["problem"] for r in rows)
    with pytest.raises(ValueError):
        SyntheticSettings(operations=("power",))
    with pytest.raises(ValueError):
        generate_rows("validation", SMALL)
