"""From similar pairs to removals: items are visited in keep order, and an item is removed when
it is similar to an item visited before it (rule "kept": to one that was kept; rule "earlier":
to any, SemDeDup's reference rule, under which removals can chain)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Removals:
    """Per item: removed or not, the item it duplicates (-1: none), the similarity to it, and
    its group (the rank of the kept item its chain of duplicates ends at; -1: in no group)."""

    removed: np.ndarray
    duplicate_of: np.ndarray
    similarity: np.ndarray
    group: np.ndarray

    @classmethod
    def none(cls, n: int) -> Removals:
        """n items, nothing removed, no groups."""
        return cls(np.zeros(n, bool), np.full(n, -1, np.int64), np.full(n, np.nan, np.float32), np.full(n, -1, np.int64))


def remove(rank: np.ndarray, a: np.ndarray, b: np.ndarray, sim: np.ndarray, rule: str = "kept") -> Removals:
    """Apply the rule to candidate pairs (a[i], b[i]) of similarity sim[i] (each pair once or
    twice, in any order)."""
    n = len(rank)
    a_first = rank[a] < rank[b]
    earlier, later = np.where(a_first, a, b), np.where(a_first, b, a)
    order = np.lexsort((-sim, rank[later]))  # by the later item's turn, most similar first
    earlier, later, sim = earlier[order], later[order], sim[order]
    duplicate_of, similarity = np.full(n, -1, np.int64), np.full(n, np.nan, np.float32)
    starts = np.flatnonzero(np.r_[True, later[1:] != later[:-1]]) if len(later) else np.zeros(0, np.int64)
    if rule == "earlier":
        duplicate_of[later[starts]], similarity[later[starts]] = earlier[starts], sim[starts]
    else:
        _greedy(earlier, later, sim, starts, duplicate_of, similarity)
    removed = duplicate_of >= 0
    return Removals(removed, duplicate_of, similarity, _groups(rank, duplicate_of))


def _greedy(earlier, later, sim, starts, duplicate_of, similarity) -> None:
    kept = np.ones(len(duplicate_of), bool)
    ends = np.r_[starts[1:], len(later)]
    for start, end in zip(starts.tolist(), ends.tolist()):
        candidates = earlier[start:end]
        alive = kept[candidates]
        if alive.any():
            first = int(alive.argmax())
            item = later[start]
            kept[item] = False
            duplicate_of[item], similarity[item] = candidates[first], sim[start + first]


def _groups(rank: np.ndarray, duplicate_of: np.ndarray) -> np.ndarray:
    """The kept item at the end of each item's duplicate_of chain, as its rank (a group id that
    does not depend on how the pool is sharded); -1 for items in no group."""
    root = np.arange(len(rank))
    removed = duplicate_of >= 0
    root[removed] = duplicate_of[removed]
    while True:  # chains only occur under rule "earlier"; each pass halves them
        step = root[root]
        if np.array_equal(step, root):
            break
        root = step
    in_group = removed.copy()
    in_group[root[removed]] = True
    return np.where(in_group, rank[root], -1)
