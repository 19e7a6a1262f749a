"""The generic MCTS core on tiny worlds with hand-computed values."""

from __future__ import annotations

import math
import random

import pytest

from astro_pipeline.search.mcts import MCTS, Candidate, Evaluation, SearchNode, softmax


class TableWorld:
    """A fixed game: states are strings, children and rewards come from tables; counts calls."""

    def __init__(self, children: dict[str, list[tuple[str, float]]], rewards: dict[str, float],
                 terminals: set[str] = frozenset()) -> None:
        self.children = children
        self.rewards = rewards
        self.terminals = set(terminals)
        self.expand_calls: list[list[str]] = []
        self.evaluate_calls: list[tuple[list[str], list[bool]]] = []

    def is_terminal(self, state: str) -> bool:
        return state in self.terminals

    def expand(self, states):
        self.expand_calls.append(list(states))
        return [[(a, logit, s + a) for a, logit in self.children.get(s, [])] for s in states]

    def evaluate(self, states, terminal):
        self.evaluate_calls.append((list(states), list(terminal)))
        return [self.rewards[s] for s in states]


def _game() -> TableWorld:
    # root "" -> a (R=1), b (R=0); a -> aa (R=.5), ab (R=0); aa -> aaa (terminal, 1), aab (terminal, 0)
    return TableWorld(
        children={"": [("a", 0.0), ("b", 0.0)], "a": [("a", 0.0), ("b", 0.0)], "aa": [("a", 0.0), ("b", 0.0)]},
        rewards={"a": 1.0, "b": 0.0, "aa": 0.5, "ab": 0.0, "aaa": 1.0, "aab": 0.0},
        terminals={"aaa", "aab"},
    )


def _by_state(tree) -> dict[str, SearchNode]:
    return {n.state: n for n in tree.nodes}


def test_puct_choice_hand_computed():
    mcts = MCTS(_game(), c_puct=2.0, max_depth=10)
    parent = SearchNode(node_id=0, parent=None, depth=0, visits=4, expanded=True)
    a = SearchNode(node_id=1, parent=parent, depth=1, prior=0.3, visits=1, q=0.5)
    b = SearchNode(node_id=2, parent=parent, depth=1, prior=0.7, visits=0, q=0.2)
    parent.children = [a, b]
    # a: 0.5 + 2 * 0.3 * sqrt(4) / 2 = 1.1 ; b: 0.2 + 2 * 0.7 * 2 / 1 = 3.0
    assert mcts.puct(parent, a) == pytest.approx(1.1)
    assert mcts.puct(parent, b) == pytest.approx(3.0)
    assert mcts.select(type("T", (), {"root": parent})()) is b
    # with little exploration the better Q wins: a = 0.5 + 0.1*0.3*2/2 = 0.53 > b = 0.2 + 0.1*0.7*2 = 0.34
    mcts.c_puct = 0.1
    assert mcts.select(type("T", (), {"root": parent})()) is a


def test_priors_are_softmax_over_siblings():
    world = TableWorld(children={"": [("a", math.log(3.0)), ("b", 0.0)]}, rewards={"a": 0.0, "b": 0.0})
    mcts = MCTS(world, c_puct=1.0, max_depth=5)
    tree = mcts.new_tree("")
    mcts.step([tree])
    assert [c.prior for c in tree.root.children] == pytest.approx([0.75, 0.25])
    assert softmax([float("-inf")] * 2) == [0.5, 0.5]


def test_backup_arithmetic_hand_computed():
    world = _game()
    mcts = MCTS(world, c_puct=1.0, max_depth=10)
    tree = mcts.new_tree("")

    mcts.step([tree])  # root expanded into a (R=1), b (R=0)
    n = _by_state(tree)
    assert (n["a"].visits, n["a"].q, n["b"].visits, n["b"].q) == (1, 1.0, 1, 0.0)
    assert n[""].visits == 1 and n[""].q == pytest.approx(0.5)  # (1*1 + 0*1) / 2 (root has no R)

    mcts.step([tree])  # a wins PUCT (1 + .5*1/2 vs 0 + .5*1/2); expanded into aa (.5), ab (0)
    n = _by_state(tree)
    assert n["a"].visits == 2
    assert n["a"].q == pytest.approx((0.5 + 0.0 + 1.0) / 3)  # (sum Q(c)N(c) + R(a)) / (sum N(c) + 1)
    assert n[""].q == pytest.approx((0.5 * 2 + 0.0 * 1) / 3)

    mcts.step([tree])  # root: a .736 vs b .354; a: aa .854 vs ab .354 -> aa expanded into terminals
    n = _by_state(tree)
    assert n["aaa"].terminal and n["aab"].terminal
    assert n["aa"].visits == 2 and n["aa"].q == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert n["a"].visits == 3 and n["a"].q == pytest.approx((0.5 * 2 + 0.0 * 1 + 1.0) / 4)
    assert n[""].visits == 3 and n[""].q == pytest.approx((0.5 * 3 + 0.0 * 1) / 4)
    assert [x.node_id for x in tree.nodes] == list(range(len(tree.nodes)))
    assert [x.state for x in tree.nodes] == ["", "a", "b", "aa", "ab", "aaa", "aab"]  # creation order


def test_classic_mode_backs_up_a_selected_terminal_again():
    world = TableWorld(children={"": [("t", 0.0)]}, rewards={"t": 1.0}, terminals={"t"})
    mcts = MCTS(world, c_puct=1.0, max_depth=5, skip_exhausted=False)
    tree = mcts.new_tree("")
    mcts.search([tree], 3)
    t = tree.root.children[0]
    assert len(world.expand_calls) == 1  # only the root was ever expanded
    assert len(world.evaluate_calls) == 1
    assert world.evaluate_calls[0] == (["t"], [True])  # terminal evaluated directly, flagged as such
    assert (t.visits, t.q, tree.root.visits, tree.root.q) == (3, 1.0, 3, 1.0)
    assert tree.iterations == 3 and not mcts.exhausted(tree)


def test_skip_exhausted_never_reselects_terminals_and_finishes_early():
    # the terminal "t" has almost all the prior; the open "a" must still be chosen next
    world = TableWorld(children={"": [("t", 10.0), ("a", 0.0)], "a": [("x", 0.0)]},
                       rewards={"t": 0.0, "a": 0.0, "ax": 1.0}, terminals={"t", "ax"})
    mcts = MCTS(world, c_puct=1.0, max_depth=5)
    tree = mcts.new_tree("")
    mcts.step([tree])
    assert not mcts.exhausted(tree)
    mcts.step([tree])
    assert world.expand_calls == [[""], ["a"]]
    n = _by_state(tree)
    assert n["t"].visits == 1 and n["a"].visits == 2 and n["a"].exhausted and tree.root.exhausted
    assert mcts.exhausted(tree)
    mcts.search([tree], 5)  # nothing left: no calls, no counted iterations
    assert len(world.expand_calls) == 2 and len(world.evaluate_calls) == 2 and tree.iterations == 2


def test_depth_limit_makes_terminals():
    class Chain:
        def is_terminal(self, s):
            return False

        def expand(self, states):
            return [[Candidate(i, 0.0, s + (i,)) for i in range(2)] for s in states]

        def evaluate(self, states, terminal):
            return [Evaluation(0.5 if not t else 0.0, {"flag": t}) for s, t in zip(states, terminal)]

    mcts = MCTS(Chain(), c_puct=1.0, max_depth=2)
    tree = mcts.new_tree(())
    mcts.search([tree], 10)
    assert max(n.depth for n in tree.nodes) == 2
    deep = [n for n in tree.nodes if n.depth == 2]
    assert deep and all(n.terminal and not n.children and n.payload["flag"] for n in deep)
    assert all(not n.terminal for n in tree.nodes if n.depth < 2)


def test_dead_end_leaf_becomes_terminal():
    world = TableWorld(children={"": [("a", 0.0)]}, rewards={"a": 0.25})
    mcts = MCTS(world, c_puct=1.0, max_depth=5)
    tree = mcts.new_tree("")
    mcts.search([tree], 3)  # "a" has no children in the table: a dead end
    a = tree.root.children[0]
    assert a.terminal and a.exhausted and a.q == pytest.approx(0.25) and a.visits == 2
    assert len(world.expand_calls) == 2 and mcts.exhausted(tree) and tree.iterations == 2


class RandomWorld:
    """A stochastic bandit-like game: random rewards and logits from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def is_terminal(self, state):
        return len(state) >= 3

    def expand(self, states):
        return [[(i, self.rng.gauss(0, 1), s + (i,)) for i in range(3)] for s in states]

    def evaluate(self, states, terminal):
        return [self.rng.random() for _ in states]


def _signature(trees):
    return [[(n.node_id, n.parent.node_id if n.parent else -1, n.visits, round(n.q, 12)) for n in t.nodes] for t in trees]


def test_deterministic_under_seed_and_batched_calls():
    def run(seed):
        world = RandomWorld(seed)
        mcts = MCTS(world, c_puct=1.5, max_depth=10)
        trees = [mcts.new_tree(()) for _ in range(3)]
        mcts.search(trees, 6)
        return _signature(trees)

    assert run(1) == run(1)
    assert run(1) != run(2)

    world = TableWorld(children={"": [("a", 0.0), ("b", 0.0)]}, rewards={"a": 1.0, "b": 0.0})
    mcts = MCTS(world, c_puct=1.0, max_depth=5)
    trees = [mcts.new_tree("") for _ in range(5)]
    mcts.step(trees)
    assert len(world.expand_calls) == 1 and len(world.expand_calls[0]) == 5  # one call for all trees
    assert len(world.evaluate_calls) == 1 and len(world.evaluate_calls[0][0]) == 10
