"""The one seed derivation of the project: a stable seed from a base seed and any parts.

Every stage that needs a seed per item (a search expansion, a problem's evaluation samples, a
problem's prompt-selection samples, a tree's procedure cloning, a trace's verbalization, a
terminal's self-evaluation votes) derives it here, from the recipe's seed and what names the item
(dataset, problem id, node, phase...). So a seed never depends on row order, batching, the process
or Python's hash seed, and two stages never share a stream by accident (each names itself in the
parts). The result is a 31-bit non-negative int: every backend and library takes it as a seed.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31


def derive_seed(base: int, *parts: object) -> int:
    """A seed in [0, 2**31) from ``base`` and ``parts`` (their ``str``, so 3 and "3" are the same part)."""
    raw = "\x1f".join(str(p) for p in (base, *parts)).encode()
    return (int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") >> 1) % (1 << SEED_BITS)
