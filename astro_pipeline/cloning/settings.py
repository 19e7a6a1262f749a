"""Settings of procedure cloning and verbalization (recipe section ``cloning``).

Design: every knob of DESIGN.md §2 "Procedure cloning (Algorithm 1)", "Verbalization" and "Direct
arm" is a field here; the phrase bank is data (``PhraseBank``), so a recipe can replace or extend
the phrasings without touching code. Phrase templates use two placeholders, substituted with
``str.replace`` (never ``str.format``, so LaTeX braces in phrases are safe):

* ``{ref}`` in ``go_back``: a description of the ancestor step ("computed 21 - 4 = 17 in step B");
* ``{answer}`` in ``final_answer``: the final ``\\boxed{...}``.

Phrases are single paragraphs (no blank line inside): the verbalizer joins steps and reflection
paragraphs with "\\n\\n", the project's step delimiter.

The same bank drives the reflection detector (``count_reflections``) that evaluation runs on model
samples; ``backtrack_patterns`` / ``reflection_patterns`` are extra regular expressions for
phrasings a model may invent that are not literally in the bank.
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

ANSWER_BOXES = ("keep", "final_only")


@dataclass(frozen=True)
class PhraseBank:
    question: tuple[str, ...] = setting(
        (
            "But wait, are we solving the problem correctly so far?",
            "Wait, is the solution right so far?",
            "Are we on the right track so far?",
            "Let me check: is everything correct up to this point?",
        ),
        "phrasings of the question whether the solution is right so far (opens every reflection)",
    )
    doubt: tuple[str, ...] = setting(
        (
            "Hmm... I am not sure about this.",
            "I'm not sure this is correct.",
            "Something seems off here.",
            "I doubt that this is right.",
        ),
        "phrasings of a statement of doubt (after the question, at a backtrack)",
    )
    go_back: tuple[str, ...] = setting(
        (
            "Let's go back to where we {ref}.",
            "Let me go back to where we {ref} and try again.",
            "Let's return to where we {ref} and continue differently.",
        ),
        "phrasings of going back to a named ancestor step; {ref} becomes e.g. 'computed 21 - 4 = 17 in step B'",
    )
    restart: tuple[str, ...] = setting(
        (
            "Let's restart our solution from the beginning.",
            "Let me start over from the beginning.",
            "Let's restart from the very beginning.",
        ),
        "phrasings of restarting the solution (a backtrack to the root)",
    )
    confirmation: tuple[str, ...] = setting(
        (
            "Yes, the solution seems right so far.",
            "It looks correct so far.",
            "Yes, everything seems to check out so far.",
        ),
        "phrasings of confirming that the solution seems right (after the question)",
    )
    final_answer: tuple[str, ...] = setting(
        ("Therefore, the final answer is {answer}.", "So the final answer is {answer}."),
        "closing sentences carrying the final box; {answer} becomes \\boxed{...} (used when answer_boxes="
        "'final_only', or when the final step has no box)",
    )
    backtrack_patterns: tuple[str, ...] = setting(
        (
            r"\b(?:let'?s|let us|let me|we(?:'ll| will| should| need to)?|i(?:'ll| will| should| need to)?)"
            r"\s+(?:go|step|head)\s+back\b",
            r"\b(?:let'?s|let us|let me)\s+(?:return|backtrack|revisit)\b",
            r"\b(?:restart|start over|start again|begin again|start from scratch)\b",
        ),
        "extra regexes (case-insensitive) the detector counts as a backtrack besides the go_back/restart phrases",
    )
    reflection_patterns: tuple[str, ...] = setting(
        (
            r"\b(?:correct|right)\s+so\s+far\s*\?",
            r"\bon the right track\b[^.?!\n]*\?",
            r"\bi(?:'m| am) not (?:sure|certain)\b",
        ),
        "extra regexes (case-insensitive) the detector counts as a reflection besides the bank's phrases",
    )

    def __post_init__(self) -> None:
        for name in ("question", "doubt", "go_back", "restart", "confirmation", "final_answer"):
            phrases = getattr(self, name)
            if not phrases:
                raise ValueError(f"cloning.phrases.{name} needs at least one phrasing")
            for p in phrases:
                if not p.strip() or "\n\n" in p or "\n" in p.strip():
                    raise ValueError(f"cloning.phrases.{name}: phrasing {p!r} must be one non-empty line")
        for p in self.go_back:
            if "{ref}" not in p:
                raise ValueError(f"cloning.phrases.go_back: {p!r} must contain {{ref}}")
        for p in self.final_answer:
            if "{answer}" not in p:
                raise ValueError(f"cloning.phrases.final_answer: {p!r} must contain {{answer}}")


@dataclass(frozen=True)
class CloningSettings:
    n_search: int = setting(3, "search sequences (k >= 1 backtracks) kept per problem (paper: 3)")
    n_direct: int = setting(1, "direct sequences (k = 0, no backtrack) kept per problem (paper: 1)")
    backtracks: tuple[int, ...] = setting(
        (0, 1, 2),
        "allowed numbers k of incorrect terminals (= backtracks) per sequence (paper: {0,1,2}); 0 allows the "
        "direct sequences, values >= 1 are drawn uniformly (among those the tree can supply) for search sequences",
    )
    max_attempts_factor: int = setting(
        20, "draws per wanted search sequence before giving up on finding new distinct ones (dedup)"
    )
    self_eval: bool = setting(
        False, "self-evaluation filter: keep a correct terminal only if the policy judges its solution right N times"
    )
    self_eval_votes: int = setting(8, "N: self-evaluation votes per correct terminal; all must say yes (paper ~8)")
    self_eval_temperature: float = setting(0.7, "sampling temperature of the self-evaluation votes")
    self_eval_max_new_tokens: int = setting(8, "max new tokens of one self-evaluation vote (a Yes/No answer)")
    seed: int = setting(0, "base seed; per-problem and per-trace seeds are derived from it and the ids")
    phrases: PhraseBank = setting(PhraseBank(), "the phrase bank of reflections (data, see PhraseBank)")
    confirm_min_q: float = setting(
        0.9, "insert question + confirmation after an intermediate step whose Q value is at least this"
    )
    confirm_max_per_example: int = setting(
        1, "at most this many intermediate confirmations per example (highest Q first; 0 = none)"
    )
    answer_boxes: str = setting(
        "keep",
        "'keep': every terminal step keeps its \\boxed answer (wrong ones are shown boxed, then doubted; the "
        "last box is the correct one); 'final_only': terminal steps are unboxed and one closing sentence "
        "carries the only \\boxed answer at the end",
    )
    llm_rewrite: bool = setting(False, "rewrite steps into a fluent continuation with the policy (paper); off = verbatim")
    rewrite_max_new_tokens: int = setting(128, "max new tokens of one rewritten step")
    rewrite_max_growth: float = setting(
        2.0, "a rewrite longer than this times the original (+40 characters) is discarded for the original"
    )
    direct_arm: bool = setting(
        True, "also emit the Direct arm (ablation): the best correct path per tree, no reflection, kind 'direct_arm'"
    )
    direct_arm_count_match: bool = setting(
        True, "repeat Direct-arm examples (cycling problems) to match the number of ASTRO examples per dataset"
    )

    def __post_init__(self) -> None:
        for name in ("n_search", "n_direct", "confirm_max_per_example"):
            if getattr(self, name) < 0:
                raise ValueError(f"cloning.{name} must be >= 0")
        if self.max_attempts_factor < 1 or self.self_eval_votes < 1 or self.self_eval_max_new_tokens < 1:
            raise ValueError("cloning: max_attempts_factor, self_eval_votes, self_eval_max_new_tokens must be >= 1")
        if not self.backtracks or any(k < 0 for k in self.backtracks):
            raise ValueError(f"cloning.backtracks must be non-negative ints, got {self.backtracks}")
        if self.answer_boxes not in ANSWER_BOXES:
            raise ValueError(f"cloning.answer_boxes must be one of {ANSWER_BOXES}, got {self.answer_boxes!r}")
        if self.rewrite_max_growth <= 0 or self.rewrite_max_new_tokens < 1:
            raise ValueError("cloning: rewrite_max_growth must be > 0 and rewrite_max_new_tokens >= 1")

    @property
    def search_backtracks(self) -> tuple[int, ...]:
        """The k >= 1 values search sequences may use, sorted."""
        return tuple(sorted({k for k in self.backtracks if k >= 1}))
