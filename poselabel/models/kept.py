"""Values derived from a tensor, kept while the tensor lives unmodified.

The camera solve of one scene (first pass, second chance, depth order, peers, the four probes)
derives the same things again from the same tensors: a mask's box and integral table, a
person's crops, a mesh's edges. ``Kept`` holds them per tensor, found by the tensor's identity
and version (``tensor._version``, bumped by every in-place change), and drops them when the
tensor is freed (a weak reference), so no value outlives what it was made from.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch


class Kept:
    """Per tensor, up to ``per_tensor`` values under hashable keys (the oldest dropped).

    ``others``: further tensors (or None) a value was made from, e.g. an ignore mask beside the
    mask: the value is found only while each is the same object at the same version; a value
    stored again under the same key replaces the stale one. Plain dicts: threads of one process
    may share a ``Kept`` (a race makes a value twice, nothing worse).
    """

    def __init__(self, per_tensor: int = 1):
        self.per_tensor = per_tensor
        self._by_id: dict[int, tuple[weakref.ref, dict]] = {}

    def get(self, tensor: torch.Tensor, key: Any = (), others: Sequence[torch.Tensor | None] = ()):
        """The value kept for ``tensor`` under ``key`` (and ``others``), or None."""
        hit = self._by_id.get(id(tensor))
        if hit is None or hit[0]() is not tensor:
            return None
        entry = hit[1].get((tensor._version, key))
        if entry is None:
            return None
        refs, versions, value = entry
        if len(refs) != len(others) or any(
                (r is None) != (o is None) or (o is not None and (r() is not o or o._version != v))
                for r, v, o in zip(refs, versions, others)):
            return None
        return value

    def put(self, tensor: torch.Tensor, value, key: Any = (), others: Sequence[torch.Tensor | None] = ()) -> None:
        """Keep ``value`` for ``tensor`` under ``key`` (made from ``others`` too)."""
        hit = self._by_id.get(id(tensor))
        if hit is None or hit[0]() is not tensor:
            hit = (weakref.ref(tensor, lambda _, i=id(tensor), by_id=self._by_id: by_id.pop(i, None)), {})
            self._by_id[id(tensor)] = hit
        kept = hit[1]
        kept[(tensor._version, key)] = (tuple(None if o is None else weakref.ref(o) for o in others),
                                        tuple(None if o is None else o._version for o in others), value)
        # the oldest beyond the bound; list() copies the keys in one step, so a thread
        # trimming the same tensor's entries at once cannot break the iteration
        for old in list(kept)[:max(0, len(kept) - self.per_tensor)]:
            kept.pop(old, None)

    def __call__(self, tensor: torch.Tensor, make: Callable[[], Any], key: Any = (),
                 others: Sequence[torch.Tensor | None] = ()):
        """The kept value, or ``make()``'s, kept."""
        value = self.get(tensor, key, others)
        if value is None:
            value = make()
            self.put(tensor, value, key, others)
        return value

    def count(self, tensor: torch.Tensor) -> int:
        """How many values are kept for ``tensor``."""
        hit = self._by_id.get(id(tensor))
        return 0 if hit is None or hit[0]() is not tensor else len(hit[1])
