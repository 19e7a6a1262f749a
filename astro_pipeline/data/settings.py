"""Recipe settings of problem loading: which datasets (section ``datasets``) and how rows are
checked (section ``problems``).

Design choices:

* Dataset names are partition keys (Dagster dynamic partitions, folder names in the artifact
  store), so every name here must pass ``check_dataset_name`` ([a-z0-9_-], starting with a letter
  or digit). Validation runs in ``__post_init__`` so a bad recipe fails when it is loaded.
* ``limits`` caps the number of *problems* (not input rows) of a dataset that the stages use: the
  first N problems in source order are searched, trained on and evaluated, e.g. a 20-problem
  MATH-500 slice for a CPU demo. The ``problems`` table still holds every row of the source (and
  ``quarantine`` every rejected one), so a query never shows a silently shortened dataset.
* Length caps are on characters, not tokens: loading must not depend on a tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from astro_pipeline.config import setting

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # used with fullmatch: "$" would accept a final "\n"


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a safe dataset name / partition key, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid dataset name {name!r}: use 1-64 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DatasetSettings:
    train: tuple[str, ...] = setting(
        ("math_train",),
        "datasets whose problems are searched with MCTS and cloned into the CoT training corpus",
    )
    benchmarks: tuple[str, ...] = setting(
        ("math500", "amc2023", "aime2024"),
        "datasets every model stage is evaluated on",
    )
    optional: tuple[str, ...] = setting(
        (),
        "datasets that may be unreachable (e.g. a hub benchmark on an offline machine): when loading one "
        "fails, `astro run` reports it as skipped with the reason and goes on without it",
    )
    limits: dict[str, int] = setting(
        {},
        "optional maximum number of problems per dataset (dataset name -> N) that the stages use: the first N "
        "problems in source order are searched, trained on and evaluated (e.g. a small math500 slice for the "
        "demo); the problems table keeps every row",
    )

    def __post_init__(self) -> None:
        for field_name in ("train", "benchmarks", "optional"):
            names = getattr(self, field_name)
            for name in names:
                check_dataset_name(name)
            if len(set(names)) != len(names):
                raise ValueError(f"datasets.{field_name}: duplicate names in {list(names)}")
        if not isinstance(self.limits, dict):
            raise ValueError(f"datasets.limits: expected a mapping of dataset name -> N, got {self.limits!r}")
        for name, limit in self.limits.items():
            check_dataset_name(name)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"datasets.limits.{name}: expected a positive integer, got {limit!r}")

    def limit_for(self, name: str) -> int | None:
        """The problem cap of one dataset, or ``None`` for all of it."""
        return self.limits.get(name)

    def all_names(self) -> tuple[str, ...]:
        """Train datasets then benchmarks, each once, in recipe order."""
        return tuple(dict.fromkeys((*self.train, *self.benchmarks)))


@dataclass(frozen=True)
class ProblemSettings:
    max_problem_chars: int = setting(
        8000,
        "problems longer than this many characters are quarantined (the longest MATH train problem "
        "has 4,309)",
    )
    max_answer_chars: int = setting(
        500,
        "reference answers longer than this many characters are quarantined (the longest MATH train "
        "answer has 159); a very long 'answer' is usually a whole solution in the wrong field",
    )
    derive_answer_from_solution: bool = setting(
        True,
        "when a row's answer is missing or empty, take the content of the last \\boxed{} of its "
        "solution (recorded as answer_source='boxed_solution'); if false such rows are quarantined",
    )
    id_hash_chars: int = setting(
        16,
        "length of the hex SHA-1 prefix used as problem_id for rows without an id field",
    )
    max_source_bytes: int = setting(
        512 * 1024 * 1024,
        "a problem file larger than this many bytes is refused with its size named (files are read whole: "
        "parsing takes several times the file's size in memory); MATH train as JSON Lines is about 10 MB",
    )

    def __post_init__(self) -> None:
        for name in ("max_problem_chars", "max_answer_chars", "max_source_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"problems.{name}: expected a positive integer, got {value!r}")
        if not 8 <= self.id_hash_chars <= 40:
            raise ValueError(f"problems.id_hash_chars: expected 8..40, got {self.id_hash_chars!r}")
