"""A KV cache that grows in chunks instead of concatenating on every decoded token.

Design: transformers' ``DynamicLayer`` appends each new token with ``torch.cat``, which copies the
whole cache of every layer at every step (quadratic in the generated length; on CPU it was about a
fifth of a decode step for a 64-row batch). ``GrowingLayer`` keeps a buffer with spare capacity and
writes the new token in place; the cache it hands to attention is a view of the filled part.
Capacity grows by half (amortised linear copying). Row selection (dropping finished rows,
copying a prompt's cache to its samples) indexes the buffer, so those keep working.
Only plain full-attention layers are replaced; sliding-window or other layer types keep
transformers' own implementation.

``gather_positions`` rebuilds a cache from chosen positions of each row (a copy, values unchanged):
the backend's shared-prefix prefill leaves padding between a prefix and its suffix and compacts
the rows back to the usual left-padded layout with it. It only applies to full-attention layers
(``full_attention_only``): a sliding window would hold other positions.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    def __init__(self, headroom: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.headroom = headroom
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._n = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        q = key_states.shape[-2]
        need = self._n + q
        if self._k is None or need > self._k.shape[-2]:
            cap = max(need + self.headroom, int(need * 1.5))
            k = key_states.new_empty((*key_states.shape[:-2], cap, key_states.shape[-1]))
            v = value_states.new_empty((*value_states.shape[:-2], cap, value_states.shape[-1]))
            if self._n:
                k[..., : self._n, :] = self._k[..., : self._n, :]
                v[..., : self._n, :] = self._v[..., : self._n, :]
            self._k, self._v = k, v
        self._k[..., self._n : need, :] = key_states
        self._v[..., self._n : need, :] = value_states
        self._n = need
        self.keys, self.values = self._k[..., :need, :], self._v[..., :need, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._k is not None:
            self._k, self._v = self._k[indices], self._v[indices]
            self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self._k is not None:
            self._k = self._k.repeat_interleave(repeats, dim=0)
            self._v = self._v.repeat_interleave(repeats, dim=0)
            self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]

    def gather_positions(self, index: torch.Tensor) -> None:
        """Keep, for each row b, positions ``index[b]`` in that order (``index``: (B, T) long)."""
        if self._k is None:
            return
        k, v = _gather(self.keys, index), _gather(self.values, index)
        self._n = index.shape[-1]
        self._k = k.new_empty((*k.shape[:-2], self._n + self.headroom, k.shape[-1]))
        self._v = v.new_empty((*v.shape[:-2], self._n + self.headroom, v.shape[-1]))
        self._k[..., : self._n, :] = k
        self._v[..., : self._n, :] = v
        self.keys, self.values = self._k[..., : self._n, :], self._v[..., : self._n, :]

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if tokens_to_remove < 0 and self.is_initialized:
            self._n = self.keys.shape[-2]

    def reset(self) -> None:
        super().reset()
        self._k = self._v = None
        self._n = 0


def growing_cache(config, headroom: int = 64) -> DynamicCache:
    """A ``DynamicCache`` for ``config`` whose full-attention layers are ``GrowingLayer``s."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(headroom) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def _gather(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    # states (B, heads, T, D); index (B, T') -> (B, heads, T', D)
    idx = index[:, None, :, None].expand(-1, states.shape[1], -1, states.shape[-1])
    return states.gather(2, idx)


def full_attention_only(cache: DynamicCache) -> bool:
    """Whether every layer of ``cache`` attends to all positions (so positions can be moved)."""
    return all(type(layer) in (GrowingLayer, DynamicLayer) for layer in cache.layers)


def gather_positions(cache: DynamicCache, index: torch.Tensor) -> None:
    """Rebuild every layer of ``cache`` from positions ``index`` ((B, T) long) of each row."""
    for layer in cache.layers:
        if isinstance(layer, GrowingLayer):
            layer.gather_positions(index)
        elif type(layer) is DynamicLayer:
            if layer.is_initialized:
                layer.keys, layer.values = _gather(layer.keys, index), _gather(layer.values, index)
        else:
            raise TypeError(f"cannot move positions of a {type(layer).__name__} cache layer")
