"""A small hand-written search tree and a trace over it, in the warehouse's column layout.

    0 root
    ├─ 1 "A: 3 + 5 = 8"                 (visited 3 times)
    │  ├─ 3 "B: 8 * 2 = 16. \\boxed{16}"   correct
    │  └─ 4 "B: 8 * 2 = 18. \\boxed{18}"   wrong
    └─ 2 "A: 3 + 5 = 9"
       └─ 5 "B: 9 * 2 = 18. \\boxed{19}"   wrong

The trace visits 2, 5 (wrong, answer 19), restarts at the root, then 1, 4 (wrong, 18), goes back
to 1, and ends at 3 (correct): two backtracks, one a restart.
"""

from __future__ import annotations

import polars as pl

NODES = [
    # node_id, parent_id, depth, step, is_terminal, answer, correct, visits, q_value, prior
    (0, None, 0, "", False, None, None, 6, 0.33, 1.0),
    (1, 0, 1, "A: 3 + 5 = 8", False, None, None, 3, 0.5, 0.7),
    (2, 0, 1, "A: 3 + 5 = 9", False, None, None, 2, 0.0, 0.3),
    (3, 1, 2, "B: 8 * 2 = 16. The answer is \\boxed{16}", True, "16", True, 1, 1.0, 0.6),
    (4, 1, 2, "B: 8 * 2 = 18. The answer is \\boxed{18}", True, "18", False, 1, 0.0, 0.4),
    (5, 2, 2, "B: 9 * 2 = 18. The answer is \\boxed{19}", True, "19", False, 1, 0.0, 1.0),
]
COLUMNS = ("node_id", "parent_id", "depth", "step", "is_terminal", "answer", "correct", "visits", "q_value", "prior")


def tree_frame(problem_id: str = "p1", dataset: str = "toy", **extra_columns) -> pl.DataFrame:
    rows = [dict(zip(COLUMNS, n), dataset=dataset, problem_id=problem_id) for n in NODES]
    frame = pl.DataFrame(rows, schema_overrides={"parent_id": pl.Int64, "answer": pl.String, "correct": pl.Boolean})
    return frame.with_columns(pl.Series(k, v) for k, v in extra_columns.items())


def trace_frame(problem_id: str = "p1", dataset: str = "toy") -> pl.DataFrame:
    return pl.DataFrame([
        {"dataset": dataset, "problem_id": problem_id, "trace_id": f"{problem_id}#search-x", "kind": "search",
         "n_backtracks": 2, "n_restarts": 1, "node_ids": [0, 2, 5, 1, 4, 3], "backtrack_from": [5, 4],
         "backtrack_targets": [0, 1], "wrong_answers": ["19", "18"], "correct_node_id": 3, "answer": "16", "repeat": 0},
        {"dataset": dataset, "problem_id": problem_id, "trace_id": f"{problem_id}#direct-y", "kind": "direct",
         "n_backtracks": 0, "n_restarts": 0, "node_ids": [0, 1, 3], "backtrack_from": [], "backtrack_targets": [],
         "wrong_answers": [], "correct_node_id": 3, "answer": "16", "repeat": 0},
    ], schema_overrides={"backtrack_from": pl.List(pl.Int64), "backtrack_targets": pl.List(pl.Int64),
                         "wrong_answers": pl.List(pl.String)})
