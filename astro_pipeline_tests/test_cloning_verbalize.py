"""Verbalization of traces into CoT, the reflection detector, the optional LLM rewrite."""

from __future__ import annotations

import re
from dataclasses import replace

import polars as pl
import pytest

from astro_pipeline.cloning.detect import count_reflections
from astro_pipeline.cloning.linearize import clone_sequence, linearize_trees
from astro_pipeline.cloning.phrases import describe_step, unbox
from astro_pipeline.cloning.rewrite import rewrite_steps
from astro_pipeline.cloning.settings import CloningSettings, PhraseBank
from astro_pipeline.cloning.toytree import example_tree, tree_frame
from astro_pipeline.cloning.trace import DIRECT, DIRECT_ARM, SEARCH, Trace, trace_id
from astro_pipeline.cloning.tree import Tree
from astro_pipeline.cloning.verbalize import (
    chat_frame,
    count_tokens,
    to_chat_records,
    verbalize_trace,
    verbalize_traces,
)
from astro_pipeline.llm.protocol import Sample
from astro_pipeline.verify.extract import last_boxed_content

B = "\\boxed"
PROBLEMS = pl.DataFrame({"dataset": ["toy"], "problem_id": ["p1"], "problem": ["Start with 2.\nA: ...\nB: ...\nC: ..."],
                         "answer": ["8"]})
BANK = PhraseBank()


def _trace(tree: Tree, wrong: list[int], correct: int = 4, kind: str = SEARCH) -> Trace:
    seq, froms, targets = clone_sequence(tree, wrong, correct)
    return Trace(tree.dataset, tree.problem_id, trace_id(tree.problem_id, kind, seq), kind, tuple(seq),
                 tuple(froms), tuple(targets), tuple(tree[n].answer for n in wrong), correct, tree[correct].answer)


def _paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


def _starts_with_any(text: str, phrases) -> bool:
    return any(text.startswith(p) for p in phrases)


def _boxes(text: str) -> int:
    return len(re.findall(r"\\boxed\{", text))


def test_backtrack_reflection_names_the_ancestor_step_and_continues_below_it():
    tree = Tree.from_frame(example_tree())
    v = verbalize_trace(_trace(tree, [6, 3]), tree, CloningSettings())
    paras = _paragraphs(v.text)
    assert paras[:3] == ["A: 2 + 3 = 5", "B: 5 * 3 = 15", f"C: 15 - 1 = {B}{{14}}"]
    # reflection after the wrong terminal: question, doubt, go back to node 1 (step A)
    r1 = paras[3]
    assert _starts_with_any(r1, BANK.question)
    assert any(d in r1 for d in BANK.doubt)
    assert "where we computed 2 + 3 = 5 in step A" in r1
    assert paras[4] == "B: 5 * 2 = 10"  # the first new node below the target
    assert paras[5] == f"C: 10 - 1 = {B}{{9}}"
    assert "where we computed 5 * 2 = 10 in step B" in paras[6]
    assert paras[7] == f"C: 10 - 2 = {B}{{8}}"
    # after the final step: the question followed by a confirmation, and nothing else
    assert len(paras) == 9
    assert _starts_with_any(paras[8], BANK.question) and any(paras[8].endswith(c) for c in BANK.confirmation)
    assert (v.n_backtracks, v.n_restarts, v.n_reflections, v.n_confirmations) == (2, 0, 3, 1)


def test_backtrack_to_the_root_restarts():
    tree = Tree.from_frame(example_tree())
    v = verbalize_trace(_trace(tree, [8]), tree, CloningSettings())
    paras = _paragraphs(v.text)
    assert paras[1] == f"B: 6 * 2 = {B}{{12}}"
    assert any(paras[2].endswith(r) for r in BANK.restart)
    assert "go back to where" not in paras[2]
    assert paras[3] == "A: 2 + 3 = 5"
    assert v.n_restarts == 1


def test_every_example_ends_with_one_final_box_equal_to_n_star_answer():
    res = linearize_trees(example_tree(), replace(CloningSettings(), n_search=20))
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, CloningSettings())
    assert set(cot["kind"]) == {DIRECT, SEARCH, DIRECT_ARM}
    for r in cot.iter_rows(named=True):
        text = r["completion"]
        assert last_boxed_content(text) == "8" == r["answer"]
        # "keep": wrong terminals stay boxed; exactly one box after the last backtrack
        assert _boxes(text) == r["n_backtracks"] + 1
        tail = _paragraphs(text)
        last_reflection = max((i for i, p in enumerate(tail) if count_reflections(p, BANK)[1]), default=-1)
        assert _boxes("\n\n".join(tail[last_reflection + 1:])) == 1
        assert r["prompt"] == PROBLEMS["problem"][0]


def test_confirmation_after_final_step_except_direct_arm():
    res = linearize_trees(example_tree(), CloningSettings())
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, CloningSettings())
    for r in cot.iter_rows(named=True):
        last = _paragraphs(r["completion"])[-1]
        if r["kind"] == DIRECT_ARM:
            assert last == f"C: 10 - 2 = {B}{{8}}"
            assert r["n_reflections"] == 0
        else:
            assert _starts_with_any(last, BANK.question) and any(last.endswith(c) for c in BANK.confirmation)
            assert _paragraphs(r["completion"])[-2] == f"C: 10 - 2 = {B}{{8}}"


def test_count_reflections_recovers_the_verbalized_counts():
    res = linearize_trees(example_tree(), replace(CloningSettings(), n_search=20))
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, CloningSettings())
    assert sorted(set(cot["n_backtracks"])) == [0, 1, 2]
    for r in cot.iter_rows(named=True):
        assert count_reflections(r["completion"], CloningSettings()) == (r["n_reflections"], r["n_backtracks"])


def test_final_only_mode_has_exactly_one_box_at_the_very_end():
    settings = replace(CloningSettings(), answer_boxes="final_only", n_search=20)
    res = linearize_trees(example_tree(), settings)
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, settings)
    for r in cot.iter_rows(named=True):
        text = r["completion"]
        assert _boxes(text) == 1 and last_boxed_content(text) == "8"
        assert text.endswith(f"{B}{{8}}.")
        assert "C: 10 - 2 = 8" in text
        if r["n_backtracks"]:
            assert "= 9" in text or "= 14" in text or "= 12" in text  # the wrong answer is still shown


def test_high_q_intermediate_step_gets_a_confirmation():
    spec = [("A: 2 + 3 = 5", [("B: 5 * 2 = 10", [f"C: 10 - 1 = {B}{{9}}", f"C: 10 - 2 = {B}{{8}}"], {"q": 0.95})],
             {"q": 0.6})]
    tree = Tree.from_frame(tree_frame(spec, reference="8"))
    v = verbalize_trace(_trace(tree, [], correct=4, kind=DIRECT), tree, CloningSettings())
    paras = _paragraphs(v.text)
    assert paras[0] == "A: 2 + 3 = 5" and paras[1] == "B: 5 * 2 = 10"
    assert _starts_with_any(paras[2], BANK.question) and any(paras[2].endswith(c) for c in BANK.confirmation)
    assert v.n_confirmations == 2 and count_reflections(v.text, BANK) == (2, 0)
    none = verbalize_trace(_trace(tree, [], correct=4, kind=DIRECT), tree,
                           replace(CloningSettings(), confirm_max_per_example=0))
    assert none.n_confirmations == 1


def test_phrases_are_seeded_per_trace_and_vary_across_traces():
    res = linearize_trees(pl.concat([example_tree(problem_id=f"p{i}") for i in range(6)]), CloningSettings())
    probs = pl.DataFrame({"dataset": ["toy"] * 6, "problem_id": [f"p{i}" for i in range(6)],
                          "problem": ["q"] * 6, "answer": ["8"] * 6})
    trees = pl.concat([example_tree(problem_id=f"p{i}") for i in range(6)])
    a = verbalize_traces(res.traces, trees, probs, CloningSettings())
    b = verbalize_traces(res.traces, trees, probs, CloningSettings())
    assert a.equals(b)
    finals = {_paragraphs(t)[-1] for t in a.filter(pl.col("kind") != DIRECT_ARM)["completion"]}
    assert len(finals) > 1  # several phrasings are used


def test_multiline_steps_stay_one_paragraph_each():
    spec = [("A: 2 + 3 = 5\n(so far 5)", [f"B: 5 + 5 = {B}{{10}}", f"B: 5 + 3 =\n{B}{{8}}"])]
    tree = Tree.from_frame(tree_frame(spec, reference="8"))
    v = verbalize_trace(_trace(tree, [2], correct=3), tree, CloningSettings())
    paras = _paragraphs(v.text)
    assert paras[0] == "A: 2 + 3 = 5\n(so far 5)"
    assert "\n" not in paras[2]  # the reflection (its ancestor reference is one line)
    assert "computed 2 + 3 = 5 in step A" in paras[2]
    assert count_reflections(v.text, BANK) == (2, 1)


# --- naming steps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "ref"),
    [
        ("B: 21 - 4 = 17", "computed 21 - 4 = 17 in step B"),
        ("So the total is $3 + 4 = 7$.", "computed 3 + 4 = 7"),
        ("First, we find the common denominator of the two fractions.",
         'wrote "First, we find the common denominator of the"'),
        ("We have x = 2 + 3 = 5. Then we note that the answer is odd.", "computed x = 2 + 3 = 5"),
        ("So the total is 21 - 4 = 17 apples, and (so far) fine.", "computed 21 - 4 = 17"),
        ("A: the area is length * width\nso area = 3 * 4 = 12", "computed area = 3 * 4 = 12 in step A"),
    ],
)
def test_describe_step(step, ref):
    assert describe_step(step) == ref


def test_unbox():
    assert unbox(f"so {B}{{\\frac{{1}}{{2}}}} and \\fbox{{3}}") == "so \\frac{1}{2} and 3"
    assert unbox(f"{B}{{12") == f"{B}{{12"  # unbalanced: left alone


# --- detector -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wait, ARE WE SOLVING THE PROBLEM CORRECTLY SO FAR? I am not sure. Let us go back to where we added 3.",
         (1, 1)),
        ("Hmm, is the solution right so far? Something seems off here. Let\u2019s restart our solution from the "
         "beginning.", (1, 1)),
        ("I'm not certain about this. We should go back to step 2.", (1, 1)),
        ("Is the solution right so far? Not sure. Lets go back to where we were.\n\nA: 2 + 2 = 4\n\n"
         "Is this correct so far? Hmm. Let me start over.", (2, 2)),
        ("Are we solving the problem correctly so far? Yes, the solution seems right so far.", (1, 0)),
        ("A: 2 + 3 = 5\n\nB: 5 * 2 = 10\n\nC: 10 - 2 = \\boxed{8}", (0, 0)),
        ("The ball goes back to the start after 2.5 seconds, so the total distance is 10.", (0, 0)),
        ("", (0, 0)),
    ],
)
def test_count_reflections_is_tolerant(text, expected):
    assert count_reflections(text, CloningSettings()) == expected


def test_detector_follows_the_bank():
    bank = PhraseBank(question=("Is that OK?",), go_back=("Back we go to where we {ref}.",),
                      backtrack_patterns=(), reflection_patterns=())
    text = "A: 1\n\nIs that OK? Hmm. Back we go to where we computed 1."
    assert count_reflections(text, bank) == (1, 1)
    assert count_reflections(text, PhraseBank()) == (0, 0)


# --- tokens, chat form ----------------------------------------------------------------------


class _Tok:
    def encode(self, text, add_special_tokens=True):
        assert add_special_tokens is False
        return text.split()


def test_token_counts_with_and_without_a_tokenizer():
    assert count_tokens("A: 12 + 3 = 15", None) == (9, "estimate")  # A : 1 2 + 3 = 1 5
    assert count_tokens("A: 12 + 3 = 15", _Tok()) == (6, "tokenizer")
    assert count_tokens("abc", lambda t: 42) == (42, "tokenizer")
    res = linearize_trees(example_tree(), CloningSettings())
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, CloningSettings(), tokenizer=_Tok())
    assert (cot["n_tokens_method"] == "tokenizer").all()
    assert cot["n_tokens"].to_list() == [len(c.split()) for c in cot["completion"]]


def test_chat_records_are_trl_conversational_prompt_completion():
    res = linearize_trees(example_tree(), CloningSettings())
    cot = verbalize_traces(res.traces, example_tree(), PROBLEMS, CloningSettings())
    recs = to_chat_records(cot)
    assert {r["kind"] for r in recs} == {DIRECT, SEARCH}  # the Direct arm is not in the ASTRO corpus
    r = recs[0]
    assert r["prompt"] == [{"role": "user", "content": PROBLEMS["problem"][0]}]
    assert r["completion"][0]["role"] == "assistant" and last_boxed_content(r["completion"][0]["content"]) == "8"
    arm = chat_frame(cot, kinds=(DIRECT_ARM,))
    assert arm.height == cot.filter(pl.col("kind") == DIRECT_ARM).height
    assert arm.schema["prompt"] == pl.List(pl.Struct({"role": pl.String, "content": pl.String}))


# --- optional LLM rewrite -------------------------------------------------------------------


class _RewriteBackend:
    name = "rewrite"

    def __init__(self, replies):
        self.replies = replies
        self.requests = []

    def render(self, request):
        return request.messages[0]["content"]

    def generate(self, requests):
        self.requests.extend(requests)
        return [[Sample(text=t, finish_reason=f, n_tokens=5, logprob=0.0)] for t, f in self.replies[: len(requests)]]


def test_rewrite_falls_back_on_bad_outputs():
    steps = ["A: 2 + 3 = 5", "B: 5 * 2 = 10", "B: 5 * 3 = 15", "C: 10 - 2 = \\boxed{8}", "C: 1 + 1 = 2", "D: 2 + 2 = 4"]
    replies = [
        ("First, adding 3 to 2 gives 2 + 3 = 5.", "stop"),  # good
        ("", "stop"),  # empty
        ("Then 5 * 3 = 15 " + "very " * 40, "stop"),  # too long
        ("Subtracting gives 10 - 2 = \\boxed{9}", "stop"),  # changed box
        ("So 1 + 1 = 2 and", "length"),  # cut by the token limit
        ("Doubling gives 4.", "stop"),  # dropped numbers
    ]
    backend = _RewriteBackend(replies)
    out = rewrite_steps(backend, steps, CloningSettings())
    assert out == ["First, adding 3 to 2 gives 2 + 3 = 5.", *steps[1:]]
    assert len(backend.requests) == len(steps)
    assert "A: 2 + 3 = 5" in backend.requests[1].messages[0]["content"]  # previous steps as context


def test_verbalize_uses_rewrites_when_enabled():
    tree_df = example_tree()
    res = linearize_trees(tree_df, replace(CloningSettings(), direct_arm=False, n_search=0))
    settings = replace(CloningSettings(), llm_rewrite=True)
    backend = _RewriteBackend([("Adding first: 2 + 3 = 5.", "stop")] + [("", "stop")] * 10)
    cot = verbalize_traces(res.traces, tree_df, PROBLEMS, settings, backend=backend)
    assert cot["completion"][0].startswith("Adding first: 2 + 3 = 5.\n\nB: 5 * 2 = 10")
    with pytest.raises(ValueError, match="backend"):
        verbalize_traces(res.traces, tree_df, PROBLEMS, settings)


def test_bank_text_lists_every_phrasing_without_placeholders():
    from astro_pipeline.cloning.phrases import bank_text

    text = bank_text(BANK)
    assert "{" not in text and "restart our solution from the beginning" in text and "go back to where we" in text
