"""Synthetic demo problems: seeded multi-step arithmetic with exact answers and step-by-step solutions.

Design choices (see DESIGN "Demo world: what has been measured"):

* Every operation sits on its own labelled line of the problem ("A: Multiply by 3.") and the same
  label opens the matching solution step ("A: 7 * 3 = 21"). A 3M-parameter model trained for a few
  minutes learns this mapping; with free-form word problems it did not.
* Operands are single digits, multipliers are few (2 and 3 by default) and every intermediate
  result stays in a small range (0..30 by default): the arithmetic is learnable but not trivially so,
  which is what makes the demo base model right often but not always.
* Steps are separated by a blank line ("\\n\\n", the project's step delimiter); the last step ends
  with ``The answer is \\boxed{N}``.
* Train and test never share a problem: a problem's canonical key is (start, operations) and the
  train split skips every key of the test split (which is always generated first, from its own
  stream). Within a split keys are unique too.
* Deterministic under the seed: each split draws from ``random.Random("<seed>:<split>")`` (string
  seeds are hashed with SHA-512 by Python, independent of PYTHONHASHSEED), so a split does not
  change when the other split's size changes... except that train avoids test's keys, so changing
  ``n_test`` may change train (never the reverse).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from astro_pipeline.config import setting

SPLITS = ("train", "test")
OPERATIONS = ("add", "subtract", "multiply", "divide")

_SYMBOL = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
_VERB = {"add": "Add {}.", "subtract": "Subtract {}.", "multiply": "Multiply by {}.", "divide": "Divide by {}."}


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = setting(0, "seed of the problem generator (train and test are drawn from separate streams)")
    n_train: int = setting(4000, "number of training problems (synthetic_train)")
    n_test: int = setting(200, "number of test problems (synthetic_test); never overlaps train")
    min_steps: int = setting(3, "fewest operations per problem")
    max_steps: int = setting(4, "most operations per problem")
    start_min: int = setting(1, "smallest starting number")
    start_max: int = setting(9, "largest starting number")
    operand_min: int = setting(1, "smallest operand of add/subtract")
    operand_max: int = setting(9, "largest operand of add/subtract")
    multipliers: tuple[int, ...] = setting((2, 3), "allowed multipliers (and divisors, if 'divide' is on)")
    min_value: int = setting(0, "smallest allowed intermediate or final result")
    max_value: int = setting(30, "largest allowed intermediate or final result")
    operations: tuple[str, ...] = setting(
        ("add", "subtract", "multiply"), "operations to draw from: add, subtract, multiply, divide (exact only)"
    )

    def __post_init__(self) -> None:
        bad = sorted(set(self.operations) - set(OPERATIONS))
        if bad or not self.operations:
            raise ValueError(f"synthetic.operations: unknown {bad}; choose from {OPERATIONS}")
        if not 1 <= self.min_steps <= self.max_steps <= len(string.ascii_uppercase):
            raise ValueError("synthetic: need 1 <= min_steps <= max_steps <= 26")
        if self.start_min > self.start_max or self.operand_min > self.operand_max:
            raise ValueError("synthetic: empty start or operand range")
        if not self.min_value <= self.start_min or self.start_max > self.max_value:
            raise ValueError("synthetic: the start range must lie within [min_value, max_value]")
        if {"multiply", "divide"} & set(self.operations) and not self.multipliers:
            raise ValueError("synthetic: multiply/divide need at least one multiplier")


Operation = tuple[str, int]  # (operation name, operand)


def _apply(op: str, value: int, operand: int) -> int | None:
    if op == "add":
        return value + operand
    if op == "subtract":
        return value - operand
    if op == "multiply":
        return value * operand
    if op == "divide":
        return value // operand if value % operand == 0 else None
    raise ValueError(op)


def _operands(op: str, settings: SyntheticSettings) -> range | tuple[int, ...]:
    if op in ("multiply", "divide"):
        return settings.multipliers
    return range(settings.operand_min, settings.operand_max + 1)


def _draw(rng: random.Random, settings: SyntheticSettings) -> tuple[int, tuple[Operation, ...]]:
    """One problem: a start and a chain of operations whose results all stay in range.

    Each step picks an operation uniformly among those that have at least one valid operand (so a
    value near the top of the range is not forced into "multiply" retries), then a valid operand.
    """
    start = rng.randint(settings.start_min, settings.start_max)
    n_steps = rng.randint(settings.min_steps, settings.max_steps)
    value, ops = start, []
    for _ in range(n_steps):
        choices: dict[str, list[int]] = {}
        for op in settings.operations:
            valid = [
                x
                for x in _operands(op, settings)
                if (r := _apply(op, value, x)) is not None and settings.min_value <= r <= settings.max_value
            ]
            if valid:
                choices[op] = valid
        if not choices:  # cannot happen for sane ranges (add/subtract 0 steps aside); fail loudly
            raise ValueError(f"synthetic: no valid operation from value {value}; widen the ranges")
        op = rng.choice(sorted(choices))
        operand = rng.choice(choices[op])
        ops.append((op, operand))
        value = _apply(op, value, operand)  # type: ignore[assignment]
    return start, tuple(ops)


def render(start: int, ops: tuple[Operation, ...]) -> dict[str, str]:
    """Problem text, reference solution (steps joined by a blank line) and answer of one problem."""
    lines = [f"Start with {start}."]
    steps = []
    value = start
    for label, (op, operand) in zip(string.ascii_uppercase, ops):
        lines.append(f"{label}: {_VERB[op].format(operand)}")
        result = _apply(op, value, operand)
        steps.append(f"{label}: {value} {_SYMBOL[op]} {operand} = {result}")
        value = result  # type: ignore[assignment]
    steps[-1] += f". The answer is \\boxed{{{value}}}"
    return {"problem": "\n".join(lines), "solution": "\n\n".join(steps), "answer": str(value)}


def _keys(split: str, settings: SyntheticSettings, exclude: frozenset = frozenset()) -> list[tuple]:
    n = settings.n_train if split == "train" else settings.n_test
    rng = random.Random(f"{settings.seed}:{split}")
    seen: set[tuple] = set()
    keys: list[tuple] = []
    attempts, max_attempts = 0, 50 * n + 1000
    while len(keys) < n:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"synthetic: could only draw {len(keys)} distinct {split} problems of {n}; "
                "widen the ranges or lower the counts"
            )
        key = _draw(rng, settings)
        if key in seen or key in exclude:
            continue
        seen.add(key)
        keys.append(key)
    return keys


def generate_rows(split: str, settings: SyntheticSettings) -> list[dict]:
    """The ``split`` ("train" or "test") problems as rows with keys id, problem, answer, solution."""
    if split not in SPLITS:
        raise ValueError(f"synthetic split must be one of {SPLITS}, got {split!r}")
    test_keys = _keys("test", settings)
    keys = test_keys if split == "test" else _keys("train", settings, exclude=frozenset(test_keys))
    rows = []
    for i, (start, ops) in enumerate(keys):
        r = render(start, ops)
        rows.append({"id": f"synthetic_{split}_{i:05d}", "problem": r["problem"], "answer": r["answer"], "solution": r["solution"]})
    return rows
