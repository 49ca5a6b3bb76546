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


def remove_within_groups(embeddings: np.ndarray, groups: np.ndarray, rank: np.ndarray, threshold: float,
                         block: int = 1024, chunk: int = 16384) -> Removals:
    """Rule "kept" without listing the similar pairs: within each group (a k-means cluster),
    items are visited in keep order, a block at a time, and compared only with the items kept
    so far. An item whose most similar kept item is above `threshold` is removed as its
    duplicate. The same removals as `remove(..., rule="kept")` on every pair of a group, but
    memory grows with a block times the kept items of a group, not with the similar pairs:
    those are quadratic in a group of copies (50,000 copies: over a billion pairs)."""
    duplicate_of = np.full(len(rank), -1, np.int64)
    similarity = np.full(len(rank), np.nan, np.float32)
    order = np.lexsort((rank, groups))
    bounds = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1], True])
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        kept = np.zeros(0, np.int64)
        for first in range(start, end, block):
            items = order[first:min(first + block, end)]
            best_sim, best = _most_similar(embeddings, items, kept, chunk)
            kept = np.r_[kept, _visit_block(embeddings, items, best_sim, best, threshold, duplicate_of, similarity)]
    return Removals(duplicate_of >= 0, duplicate_of, similarity, _groups(rank, duplicate_of))


def _most_similar(embeddings: np.ndarray, items: np.ndarray, kept: np.ndarray, chunk: int):
    """For each item, its highest similarity to a kept item and that item (-inf, -1: none)."""
    best_sim, best = np.full(len(items), -np.inf, np.float32), np.full(len(items), -1, np.int64)
    for at in range(0, len(kept), chunk):
        part = kept[at:at + chunk]
        sims = embeddings[items] @ embeddings[part].T
        column = sims.argmax(axis=1)
        value = sims[np.arange(len(items)), column]
        better = value > best_sim
        best_sim[better], best[better] = value[better], part[column[better]]
    return best_sim, best


def _visit_block(embeddings, items, best_sim, best, threshold, duplicate_of, similarity) -> np.ndarray:
    """Visit a block's items in order against the kept items before it and those of the block
    kept so far; record removals; return the items of the block that are kept."""
    within = embeddings[items] @ embeddings[items].T
    kept_here: list[int] = []
    for i in range(len(items)):
        sim, of = best_sim[i], best[i]
        if kept_here:
            row = within[i, kept_here]
            j = int(row.argmax())
            if row[j] > sim:
                sim, of = row[j], items[kept_here[j]]
        if sim > threshold:
            duplicate_of[items[i]], similarity[items[i]] = of, sim
        else:
            kept_here.append(i)
    return items[kept_here]
