"""Settings of the answer verifier (recipe section ``verify``).

Design: one frozen dataclass, every field declared with ``setting(default, help)`` so the help text
travels with the code and the resolved values are saved beside every artifact. Frozen (hence
hashable) so a process-wide verifier pool can be shared per distinct settings value.
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting


@dataclass(frozen=True)
class VerifySettings:
    timeout_s: float = setting(
        5.0,
        "Wall-clock limit per verified pair, in seconds. A worker process that overruns it is killed and "
        "replaced, and the pair gets verdict 'timeout'.",
    )
    workers: int = setting(0, "Number of verifier worker processes; 0 = one per CPU core available to this process.")
    chunk_size: int = setting(
        8,
        "Most pairs sent to a worker in one message (amortizes inter-process overhead; smaller near the end "
        "of a batch so no worker is left holding slow pairs; results still come back one by one so the "
        "per-pair deadline stays exact).",
    )
    max_answer_chars: int = setting(
        2000,
        "Longest extracted answer that is parsed at all. A longer gold answer is 'unparsable_gold', a longer "
        "predicted answer is 'wrong' (no real final answer is that long; parsing it only risks time and memory).",
    )
    max_nesting_depth: int = setting(
        64,
        "Deepest nesting of braces, parentheses and brackets accepted in an extracted answer. Real answers "
        "nest a few levels; thousands of levels only exercise the parser's recursion. Deeper gold -> "
        "'unparsable_gold', deeper prediction -> 'wrong'.",
    )
    max_number_digits: int = setting(
        100_000,
        "Largest number (in decimal digits) that literal powers and factorials in a predicted answer may "
        "build, e.g. 9^{9^{9}} has ~370 million. A prediction over it is 'wrong' without calling sympy "
        "(unless the gold answer is over it too); keeps towers from costing a full timeout each.",
    )
    max_response_chars: int = setting(
        2_000_000,
        "Longest response text that is searched for an answer; a longer one gets 'no_answer' with a reason.",
    )
    fast_path: bool = setting(
        True,
        "Decide plain-number pairs (after normalization) in the calling process without sympy; everything "
        "else goes to math-verify in a worker.",
    )
    float_rounding: int = setting(6, "math-verify float_rounding: decimal places floats are rounded to before comparing.")
    numeric_precision: int = setting(15, "math-verify numeric_precision: significant digits for numeric evaluation.")
    strict: bool = setting(
        True, "math-verify strict mode: variables matter and sets are not comparable with tuples."
    )
    worker_memory_mb: int = setting(
        2048,
        "Address-space limit of each worker process in MiB (0 = none); sympy blowing up on e.g. 10^10^10^10 "
        "then fails with MemoryError instead of exhausting the machine.",
    )
    start_method: str = setting(
        "forkserver",
        "multiprocessing start method for workers: forkserver (default; math-verify is imported once in the "
        "server, so replacing a killed worker is cheap and a threaded caller is never forked), spawn or fork.",
    )

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"verify.timeout_s must be > 0, got {self.timeout_s}")
        if self.workers < 0:
            raise ValueError(f"verify.workers must be >= 0, got {self.workers}")
        if self.chunk_size < 1:
            raise ValueError(f"verify.chunk_size must be >= 1, got {self.chunk_size}")
        if self.max_answer_chars < 1 or self.max_response_chars < 1 or self.max_nesting_depth < 1:
            raise ValueError("verify.max_answer_chars, max_response_chars and max_nesting_depth must be >= 1")
        if self.start_method not in ("forkserver", "spawn", "fork"):
            raise ValueError(f"verify.start_method must be forkserver, spawn or fork, got {self.start_method!r}")
