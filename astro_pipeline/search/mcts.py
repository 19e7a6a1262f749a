"""Generic Monte Carlo Tree Search core (ASTRO / DESIGN.md §2), batched over many trees.

No LLM code lives here: the core talks to a ``World`` with a batched interface, so one call of
``world.expand`` carries the expansions of every tree advanced in a step, and one call of
``world.evaluate`` the evaluations of all their new children.

One iteration (``MCTS.step``) of every tree, in four short phases:

1. **Selection** (``select``): from the root, repeatedly pick the child maximizing PUCT
   ``Q(s,a) + c_puct * P(a|s) * sqrt(N(s)) / (1 + N(s,a))`` until a node not yet expanded or a
   terminal. Ties go to the child created first (deterministic; no randomness here).
2. **Expansion** (``expand``): the world samples candidate actions for the leaf, each with a
   log-prob ("prior logit"); P(a|s) is their softmax over the siblings. With ``merge_siblings``,
   candidates with the same ``world.action_key`` (e.g. the same step text up to whitespace) become
   ONE child that carries the prior mass of all its copies (``SearchNode.copies``); deterministic steps
   make the k samples identical, and unmerged copies would each cost an evaluation and an
   iteration. At most ``max_children`` distinct children are kept (highest prior mass first), so a
   world may draw more samples than children to reach more distinct alternatives. A child is
   terminal when the world says so or when it sits at ``max_depth``. A leaf whose expansion yields
   no child at all is a dead end and becomes terminal.
3. **Evaluation** (``evaluate``): every new child gets its value R(s') from the world (for a
   non-terminal: the mean reward of M rollouts; for a terminal: its own reward).
4. **Backup** (``backup``), by ``backup`` mode:

   * ``"paper"`` (the paper's rule): the evaluation is the new child's first visit, N(s') = 1,
     Q(s') = R(s'); along the path from the leaf to the root, N(s) += 1 and
     ``Q(s) = (sum over children c of Q(c) * N(c) + R(s)) / (sum over children c of N(c) + 1)``
     (Q(s,a) is stored on the child node s). The root has no R of its own, so its Q is the
     visit-weighted mean of its children's Q. The world's rollouts are thrown away after R(s').
   * ``"rollout_nodes"``: a rollout is a full path from the new child to a terminal; the world
     returns it split into steps (``Evaluation.rollouts``) and the core adds it to the tree as a
     chain of nodes (``origin="rollout"``, merged with identical existing children), so its
     terminal counts for procedure cloning and its steps can be expanded later. Each rollout is
     one *sample*: every node on its path, the new child included, gets N += 1 and its reward
     into a running mean, and the ancestors above the leaf get the same samples in backup. So
     N(s) counts the samples (rollouts, terminal evaluations) that passed through s and Q(s) is
     their mean reward. This is the paper's formula with each rollout counted as one visit where
     it sits, instead of the mean of M rollouts counted as one visit of s': a new child's
     Q(s') = R(s') (the mean of its rollouts) exactly as in the paper, with N(s') = M instead of 1;
     above it the values are means of the same rewards weighted by rollouts rather than by
     evaluations. Before its own expansion a rollout node's children have priors equal to the
     share of rollouts that took them; expansion resets the priors to the expansion samples' mass
     (a child the policy did not sample again has prior 0 and competes on its Q alone).

Terminals and exhausted subtrees: a node is *exhausted* when it is terminal, or expanded with every
child exhausted (no leaf below it can still be expanded). With ``skip_exhausted`` (the default),
selection never enters an exhausted child, so no iteration is spent re-visiting a known terminal,
and a tree whose root is exhausted is finished (``MCTS.exhausted``; ``step`` leaves it alone).
Without it (classic MCTS), a selected terminal is not expanded but backed up again (one more
sample of its reward). Either way an iteration never expands a terminal. Node ids are assigned in
creation order per tree (root = 0). Randomness belongs to the world (seeded), never to globals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S")
BACKUPS = ("paper", "rollout_nodes")


@dataclass(eq=False)
class SearchNode:
    """One search-tree node: the state reached by ``action`` from ``parent``."""

    node_id: int
    parent: SearchNode | None
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
    expanded: bool = False  # the world's expand ran on this node (rollout children do not count)
    origin: str = "expansion"  # "root", "expansion" (a sampled child) or "rollout" (a step of a rollout)
    copies: int = 1  # samples merged into this node when it was created by an expansion
    children: list[SearchNode] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)  # the world's extra facts about this node

    def path(self) -> list[SearchNode]:
        """The nodes from the root down to this one."""
        out: list[SearchNode] = []
        node: SearchNode | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def walk(self) -> Iterable[SearchNode]:
        """This node and all its descendants, depth-first, children in creation order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def add_samples(self, n: int, reward_sum: float) -> None:
        """Fold ``n`` samples with rewards summing to ``reward_sum`` into N and the running mean Q."""
        if n:
            self.q = (self.q * self.visits + reward_sum) / (self.visits + n)
            self.visits += n


@dataclass(eq=False)
class SearchTree:
    """A search tree, its nodes in creation order, how many iterations it has had and why it stopped."""

    root: SearchNode
    key: Any = None  # the caller's handle (e.g. the problem)
    nodes: list[SearchNode] = field(default_factory=list)
    iterations: int = 0
    merged: int = 0  # sampled candidates folded into an identical sibling (or an identical rollout step)
    stop_reason: str | None = None  # set by the caller when it stops searching this tree

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(self.root)

    def add_child(self, parent: SearchNode, action: Any, state: Any, logprob: float, payload: Mapping[str, Any]) -> SearchNode:
        child = SearchNode(
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
class Rollout:
    """One rollout from an evaluated node, split into steps (used by ``backup="rollout_nodes"``).

    ``steps``: the chain below the evaluated node, in order. ``terminal``: whether the last step ends
    the episode (False when the rollout was cut before its end: its steps are kept as open nodes and
    its sample is recorded at the deepest one). ``reward`` and ``info`` belong to the last step.
    """

    steps: tuple[Candidate, ...]
    terminal: bool
    reward: float
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """A value from ``World.evaluate``: R(s'), facts to keep on the node and, optionally, the rollouts."""

    reward: float
    info: Mapping[str, Any] = field(default_factory=dict)
    rollouts: tuple[Rollout, ...] = ()


class World(Protocol[S]):
    """What the core needs from a problem domain; every method is batched.

    A world may also define ``action_key(action) -> Hashable``: actions with equal keys are the same
    step for sibling merging (default: the action itself).
    """

    def is_terminal(self, state: S) -> bool:
        """Whether ``state`` ends the episode (the depth limit is the core's business)."""
        ...

    def expand(self, states: Sequence[S]) -> list[list[Candidate[S] | tuple[Any, float, S]]]:
        """For each state, the sampled candidate actions (action, prior logit, child state)."""
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


@dataclass
class _Group:
    """Candidates of one expansion that share an action key."""

    first: Candidate
    index: int  # position of the first copy among the samples
    mass: float = 0.0
    copies: int = 0


class MCTS:
    """PUCT search over a batched ``World``; ``step`` advances many trees by one iteration."""

    def __init__(
        self,
        world: World,
        *,
        c_puct: float,
        max_depth: int,
        skip_exhausted: bool = True,
        merge_siblings: bool = False,
        max_children: int | None = None,
        backup: str = "paper",
    ) -> None:
        if backup not in BACKUPS:
            raise ValueError(f"backup must be one of {BACKUPS}, got {backup!r}")
        self.world = world
        self.c_puct = c_puct
        self.max_depth = max_depth
        self.skip_exhausted = skip_exhausted
        self.merge_siblings = merge_siblings
        self.max_children = max_children
        self.backup_mode = backup
        key: Callable[[Any], Hashable] | None = getattr(world, "action_key", None)
        self.key: Callable[[Any], Hashable] = key if key is not None else (lambda action: action)

    def new_tree(self, state: Any, key: Any = None) -> SearchTree:
        terminal = self.world.is_terminal(state)
        root = SearchNode(node_id=0, parent=None, depth=0, state=state, terminal=terminal, exhausted=terminal, origin="root")
        return SearchTree(root=root, key=key)

    def exhausted(self, tree: SearchTree) -> bool:
        """Whether further iterations of ``tree`` can do nothing (only with ``skip_exhausted``)."""
        return self.skip_exhausted and tree.root.exhausted

    # 1. selection ------------------------------------------------------------------------------
    def puct(self, parent: SearchNode, child: SearchNode) -> float:
        """Q(s,a) + c_puct * P(a|s) * sqrt(N(s)) / (1 + N(s,a))."""
        return child.q + self.c_puct * child.prior * math.sqrt(parent.visits) / (1 + child.visits)

    def select(self, tree: SearchTree) -> SearchNode:
        """Descend by PUCT to a node not yet expanded or a terminal (ties: the earliest-created child)."""
        node = tree.root
        while node.expanded and node.children and not node.terminal:
            options = [c for c in node.children if not c.exhausted] if self.skip_exhausted else node.children
            if not options:  # only the root can get here: the tree is exhausted
                break
            node = max(options, key=lambda c: self.puct(node, c))  # max keeps the first of equals
        return node

    # 2. expansion ------------------------------------------------------------------------------
    def expand(self, trees: Sequence[SearchTree], leaves: Sequence[SearchNode]) -> list[tuple[SearchTree, SearchNode]]:
        """Children per leaf from ONE world.expand call; returns the new (tree, child) pairs."""
        if not leaves:
            return []
        proposals = self.world.expand([leaf.state for leaf in leaves])
        if len(proposals) != len(leaves):
            raise ValueError(f"world.expand returned {len(proposals)} lists for {len(leaves)} states")
        new: list[tuple[SearchTree, SearchNode]] = []
        for tree, leaf, items in zip(trees, leaves, proposals):
            new += [(tree, c) for c in self._expand_one(tree, leaf, [_as_candidate(it) for it in items])]
        return new

    def _groups(self, candidates: list[Candidate]) -> list[_Group]:
        """Candidates grouped by action key (or one group each), with their summed prior mass."""
        priors = softmax([c.logprob for c in candidates])  # P(a|s) over all samples
        groups: dict[Hashable, _Group] = {}
        for i, (cand, prior) in enumerate(zip(candidates, priors)):
            k = self.key(cand.action) if self.merge_siblings else i
            group = groups.setdefault(k, _Group(cand, i))
            group.mass += prior
            group.copies += 1
        ordered = list(groups.values())
        if self.max_children is not None and len(ordered) > self.max_children:
            ordered = sorted(ordered, key=lambda g: (-g.mass, g.index))[: self.max_children]
            ordered.sort(key=lambda g: g.index)
        return ordered

    def _expand_one(self, tree: SearchTree, leaf: SearchNode, candidates: list[Candidate]) -> list[SearchNode]:
        leaf.expanded = True
        if not candidates and not leaf.children:  # dead end: nothing to expand into
            leaf.terminal = leaf.exhausted = True
            return []
        groups = self._groups(candidates)
        total = sum(g.mass for g in groups) or 1.0
        tree.merged += sum(g.copies for g in groups) - len(groups)
        existing = {self.key(c.action): c for c in leaf.children} if self.merge_siblings else {}
        for child in leaf.children:  # children of rollouts: their prior is what this expansion sampled
            child.prior = 0.0
        new: list[SearchNode] = []
        for g in groups:
            old = existing.get(self.key(g.first.action))
            if old is not None:  # the policy sampled a step a rollout already took
                old.prior = g.mass / total
                tree.merged += g.copies
                continue
            child = tree.add_child(leaf, g.first.action, g.first.state, g.first.logprob, g.first.info)
            child.prior = g.mass / total  # the prior mass of all copies, renormalized over the kept children
            child.copies = g.copies
            child.terminal = child.depth >= self.max_depth or self.world.is_terminal(g.first.state)
            child.exhausted = child.terminal
            new.append(child)
        return new

    # 3. evaluation -----------------------------------------------------------------------------
    def evaluate(self, new: Sequence[tuple[SearchTree, SearchNode]]) -> None:
        """R(s') of every new child from ONE world.evaluate call (see the backup modes)."""
        if not new:
            return
        nodes = [n for _, n in new]
        values = self.world.evaluate([n.state for n in nodes], [n.terminal for n in nodes])
        if len(values) != len(nodes):
            raise ValueError(f"world.evaluate returned {len(values)} values for {len(nodes)} states")
        for (tree, node), value in zip(new, values):
            ev = _as_evaluation(value)
            node.reward = float(ev.reward)  # R(s')
            node.payload.update(ev.info)
            if self.backup_mode == "rollout_nodes" and not node.terminal and ev.rollouts:
                for rollout in ev.rollouts:
                    self._add_rollout(tree, node, rollout)
                self._rollout_priors(node)
            else:
                node.visits = 1  # N(s') = 1
                node.q = node.reward  # Q(s') = R(s') (no children yet)

    def _add_rollout(self, tree: SearchTree, start: SearchNode, rollout: Rollout) -> None:
        """Add one rollout below ``start`` as a chain of nodes and record its sample along it."""
        node, path = start, [start]
        for i, cand in enumerate(rollout.steps):
            last = i == len(rollout.steps) - 1
            if node.depth + 1 >= self.max_depth and not last:
                break  # deeper than the depth limit: the sample stays at the deepest node kept
            key = self.key(cand.action)
            child = next((c for c in node.children if self.key(c.action) == key), None)
            if child is None:
                child = tree.add_child(node, cand.action, cand.state, cand.logprob, cand.info)
                child.origin = "rollout"
                if last and rollout.terminal:
                    child.terminal = child.exhausted = True
                    child.reward = float(rollout.reward)
                    child.payload.update(rollout.info)
                elif child.depth >= self.max_depth:  # a cut rollout's last step at the depth limit
                    child.terminal = child.exhausted = True
                    child.reward = 0.0
                    child.payload.update({"answer": None, "correct": False, "terminal_reason": "depth"})
            else:
                tree.merged += 1
            node = child
            path.append(node)
            if node.terminal:
                break
        for n in path:  # one sample of the rollout's reward on every node it passed through
            n.add_samples(1, float(rollout.reward))

    @staticmethod
    def _rollout_priors(start: SearchNode) -> None:
        """Below ``start``, unexpanded nodes' children get P = the share of the samples that took them."""
        stack = [start]
        while stack:
            node = stack.pop()
            if not node.expanded and node.children:
                total = sum(c.visits for c in node.children) or 1
                for c in node.children:
                    c.prior = c.visits / total
            stack.extend(c for c in node.children if c.origin == "rollout")

    # 4. backup ---------------------------------------------------------------------------------
    @staticmethod
    def node_value(node: SearchNode) -> float:
        """(sum_c Q(c) N(c) + R(s)) / (sum_c N(c) + 1); without R(s) (the root) both R and 1 drop."""
        num = sum(c.q * c.visits for c in node.children)
        den = sum(c.visits for c in node.children)
        if node.reward is not None:
            num += node.reward
            den += 1
        return num / den if den else 0.0

    def _update_exhausted(self, node: SearchNode) -> None:
        node.exhausted = node.terminal or (node.expanded and bool(node.children) and all(c.exhausted for c in node.children))

    def backup(self, leaf: SearchNode, new_children: Sequence[SearchNode] = ()) -> None:
        """From the leaf up to the root: the paper's rule, or the new samples (``rollout_nodes``)."""
        if self.backup_mode == "paper":
            node: SearchNode | None = leaf
            while node is not None:
                node.visits += 1
                node.q = self.node_value(node)
                self._update_exhausted(node)
                node = node.parent
            return
        if new_children:
            n = sum(c.visits for c in new_children)
            w = sum(c.q * c.visits for c in new_children)
        else:  # a terminal selected again (classic mode): one more sample of its reward
            n, w = (1, leaf.reward or 0.0) if leaf.terminal else (0, 0.0)
        node = leaf
        while node is not None:
            node.add_samples(n, w)
            self._update_exhausted(node)
            node = node.parent

    # one iteration of many trees ---------------------------------------------------------------
    def step(self, trees: Sequence[SearchTree]) -> None:
        """Select, expand, evaluate, back up: one iteration of every tree, batched across trees.

        Exhausted trees (with ``skip_exhausted``) are left alone and their iteration is not counted.
        """
        trees = [t for t in trees if not self.exhausted(t)]
        leaves = [self.select(t) for t in trees]
        open_pairs = [(t, leaf) for t, leaf in zip(trees, leaves) if not leaf.terminal]
        new = self.expand([t for t, _ in open_pairs], [leaf for _, leaf in open_pairs])
        self.evaluate(new)
        by_leaf: dict[int, list[SearchNode]] = {}
        for _, child in new:
            by_leaf.setdefault(id(child.parent), []).append(child)
        for tree, leaf in zip(trees, leaves):
            self.backup(leaf, by_leaf.get(id(leaf), ()))
            tree.iterations += 1

    def search(self, trees: Sequence[SearchTree], iterations: int) -> None:
        """Run ``iterations`` lock-step iterations over ``trees``."""
        for _ in range(iterations):
            if all(self.exhausted(t) for t in trees):
                break
            self.step(trees)
