"""Generic Monte Carlo Tree Search core (ASTRO / DESIGN.md §2), batched over many trees.

No LLM code lives here: the core talks to a ``World`` with a batched interface, so one call of
``world.expand`` carries the expansions of every tree advanced in a step, and one call of
``world.evaluate`` the evaluations of all their new children.

One iteration (``MCTS.step``) of every tree, in four short phases:

1. **Selection** (``select``): from the root, repeatedly pick the child maximizing PUCT
   ``Q(s,a) + c_puct * P(a|s) * sqrt(N(s)) / (1 + N(s,a))`` until a leaf (a node without children)
   or a terminal node. Ties go to the child created first (deterministic; no randomness here).
2. **Expansion** (``expand``): the world samples k candidate actions per leaf, each with a log-prob
   ("prior logit"); the priors P(a|s) are their softmax over the siblings. A child is terminal when
   the world says so or when it sits at ``max_depth``. A leaf whose expansion yields no child is a
   dead end and becomes terminal.
3. **Evaluation** (``evaluate``): every new child gets its value R(s') from the world (for a
   non-terminal: the mean reward of M rollouts; for a terminal: its own reward). A new child counts
   as visited once by that evaluation: N(s') = 1, Q(s') = R(s').
4. **Backup** (``backup``): along the path from the leaf to the root, N(s) += 1 and
   ``Q(s) = (sum over children c of Q(c) * N(c) + R(s)) / (sum over children c of N(c) + 1)``
   (the paper's rule; Q(s,a) is stored on the child node s). The root has no R of its own, so its
   Q is the visit-weighted mean of its children's Q (the "+ R" and "+ 1" terms drop out).

Terminals and exhausted subtrees: a node is *exhausted* when it is terminal, or expanded with every
child exhausted (no leaf below it can still be expanded). With ``skip_exhausted`` (the default),
selection never enters an exhausted child, so no iteration is spent re-visiting a known terminal,
and a tree whose root is exhausted is finished (``MCTS.exhausted``; ``step`` leaves it alone).
Without it (classic MCTS), a selected terminal is not expanded but backed up again (N += 1; its Q
stays its reward). Either way an iteration never expands a terminal. Node ids are assigned in
creation order per tree (root = 0). Randomness belongs to the world (seeded), never to globals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S")


@dataclass(eq=False)
class Node:
    """One search-tree node: the state reached by ``action`` from ``parent``."""

    node_id: int
    parent: Node | None
    depth: int
    action: Any = None  # the step that led here (None for the root)
    state: Any = None
    prior: float = 1.0  # P(a|s), normalized over siblings; the root's is 1
    logprob: float = 0.0  # the world's prior logit for this action
    visits: int = 0  # N(s)
    q: float = 0.0  # Q(parent, action), stored on this node
    reward: float | None = None  # R(s): evaluation of this node (None until evaluated; root: None)
    terminal: bool = False
    exhausted: bool = False  # terminal, or every child exhausted: nothing left to expand below
    children: list[Node] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)  # the world's extra facts about this node

    def path(self) -> list[Node]:
        """The nodes from the root down to this one."""
        out: list[Node] = []
        node: Node | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def walk(self) -> Iterable[Node]:
        """This node and all its descendants, depth-first, children in creation order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass(eq=False)
class Tree:
    """A search tree, its nodes in creation order, and how many iterations it has had."""

    root: Node
    key: Any = None  # the caller's handle (e.g. the problem)
    nodes: list[Node] = field(default_factory=list)
    iterations: int = 0

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(self.root)

    def add_child(self, parent: Node, action: Any, state: Any, logprob: float, payload: Mapping[str, Any]) -> Node:
        child = Node(
            node_id=len(self.nodes),
            parent=parent,
            depth=parent.depth + 1,
            action=action,
            state=state,
            logprob=float(logprob),
            payload=dict(payload),
        )
        parent.children.append(child)
        self.nodes.append(child)
        return child


@dataclass(frozen=True)
class Candidate(Generic[S]):
    """A candidate action from ``World.expand``: the action, its prior logit, the resulting state."""

    action: Any
    logprob: float
    state: S
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """A value from ``World.evaluate``: R(s') and any facts to keep on the node."""

    reward: float
    info: Mapping[str, Any] = field(default_factory=dict)


class World(Protocol[S]):
    """What the core needs from a problem domain; every method is batched."""

    def is_terminal(self, state: S) -> bool:
        """Whether ``state`` ends the episode (the depth limit is the core's business)."""
        ...

    def expand(self, states: Sequence[S]) -> list[list[Candidate[S] | tuple[Any, float, S]]]:
        """For each state, the k candidate actions (action, prior logit, child state)."""
        ...

    def evaluate(self, states: Sequence[S], terminal: Sequence[bool]) -> list[Evaluation | float]:
        """For each state, R(s): rollouts for a non-terminal, the terminal reward for a terminal."""
        ...


def softmax(logits: Sequence[float]) -> list[float]:
    """Numerically stable softmax; all -inf (or empty) gives a uniform distribution."""
    if not logits:
        return []
    top = max(logits)
    if not math.isfinite(top):
        return [1.0 / len(logits)] * len(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _as_candidate(item: Candidate | tuple) -> Candidate:
    return item if isinstance(item, Candidate) else Candidate(*item)


def _as_evaluation(item: Evaluation | float) -> Evaluation:
    return item if isinstance(item, Evaluation) else Evaluation(float(item))


class MCTS:
    """PUCT search over a batched ``World``; ``step`` advances many trees by one iteration."""

    def __init__(self, world: World, *, c_puct: float, max_depth: int, skip_exhausted: bool = True) -> None:
        self.world = world
        self.c_puct = c_puct
        self.max_depth = max_depth
        self.skip_exhausted = skip_exhausted

    def new_tree(self, state: Any, key: Any = None) -> Tree:
        terminal = self.world.is_terminal(state)
        root = Node(node_id=0, parent=None, depth=0, state=state, terminal=terminal, exhausted=terminal)
        return Tree(root=root, key=key)

    def exhausted(self, tree: Tree) -> bool:
        """Whether further iterations of ``tree`` can do nothing (only with ``skip_exhausted``)."""
        return self.skip_exhausted and tree.root.exhausted

    # 1. selection ------------------------------------------------------------------------------
    def puct(self, parent: Node, child: Node) -> float:
        """Q(s,a) + c_puct * P(a|s) * sqrt(N(s)) / (1 + N(s,a))."""
        return child.q + self.c_puct * child.prior * math.sqrt(parent.visits) / (1 + child.visits)

    def select(self, tree: Tree) -> Node:
        """Descend by PUCT to a leaf or a terminal node (ties: the earliest-created child)."""
        node = tree.root
        while node.children and not node.terminal:
            options = [c for c in node.children if not c.exhausted] if self.skip_exhausted else node.children
            if not options:  # only the root can get here: the tree is exhausted
                break
            node = max(options, key=lambda c: self.puct(node, c))  # max keeps the first of equals
        return node

    # 2. expansion ------------------------------------------------------------------------------
    def expand(self, trees: Sequence[Tree], leaves: Sequence[Node]) -> list[Node]:
        """k children per leaf from ONE world.expand call; returns all new children."""
        if not leaves:
            return []
        proposals = self.world.expand([leaf.state for leaf in leaves])
        if len(proposals) != len(leaves):
            raise ValueError(f"world.expand returned {len(proposals)} lists for {len(leaves)} states")
        new: list[Node] = []
        for tree, leaf, items in zip(trees, leaves, proposals):
            candidates = [_as_candidate(it) for it in items]
            if not candidates:  # dead end: nothing to expand into
                leaf.terminal = leaf.exhausted = True
                continue
            priors = softmax([c.logprob for c in candidates])  # P(a|s) normalized over the k siblings
            for cand, prior in zip(candidates, priors):
                child = tree.add_child(leaf, cand.action, cand.state, cand.logprob, cand.info)
                child.prior = prior
                child.terminal = child.depth >= self.max_depth or self.world.is_terminal(cand.state)
                child.exhausted = child.terminal
                new.append(child)
        return new

    # 3. evaluation -----------------------------------------------------------------------------
    def evaluate(self, nodes: Sequence[Node]) -> None:
        """R(s') of every new child from ONE world.evaluate call; the evaluation is its first visit."""
        if not nodes:
            return
        values = self.world.evaluate([n.state for n in nodes], [n.terminal for n in nodes])
        if len(values) != len(nodes):
            raise ValueError(f"world.evaluate returned {len(values)} values for {len(nodes)} states")
        for node, value in zip(nodes, values):
            ev = _as_evaluation(value)
            node.reward = float(ev.reward)  # R(s')
            node.payload.update(ev.info)
            node.visits = 1  # N(s') = 1
            node.q = node.reward  # Q(s') = R(s') (no children yet)

    # 4. backup ---------------------------------------------------------------------------------
    @staticmethod
    def node_value(node: Node) -> float:
        """(sum_c Q(c) N(c) + R(s)) / (sum_c N(c) + 1); without R(s) (the root) both R and 1 drop."""
        num = sum(c.q * c.visits for c in node.children)
        den = sum(c.visits for c in node.children)
        if node.reward is not None:
            num += node.reward
            den += 1
        return num / den if den else 0.0

    def backup(self, leaf: Node) -> None:
        """N(s) += 1 and Q(s) recomputed by the paper's rule, from the leaf up to the root."""
        node: Node | None = leaf
        while node is not None:
            node.visits += 1
            node.q = self.node_value(node)
            node.exhausted = node.terminal or (bool(node.children) and all(c.exhausted for c in node.children))
            node = node.parent

    # one iteration of many trees ---------------------------------------------------------------
    def step(self, trees: Sequence[Tree]) -> None:
        """Select, expand, evaluate, back up: one iteration of every tree, batched across trees.

        Exhausted trees (with ``skip_exhausted``) are left alone and their iteration is not counted.
        """
        trees = [t for t in trees if not self.exhausted(t)]
        leaves = [self.select(t) for t in trees]
        open_pairs = [(t, leaf) for t, leaf in zip(trees, leaves) if not leaf.terminal]
        new = self.expand([t for t, _ in open_pairs], [leaf for _, leaf in open_pairs])
        self.evaluate(new)
        for tree, leaf in zip(trees, leaves):
            self.backup(leaf)
            tree.iterations += 1

    def search(self, trees: Sequence[Tree], iterations: int) -> None:
        """Run ``iterations`` lock-step iterations over ``trees``."""
        for _ in range(iterations):
            if all(self.exhausted(t) for t in trees):
                break
            self.step(trees)
