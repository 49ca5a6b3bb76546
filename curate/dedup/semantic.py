"""SemDeDup's comparisons: every pair of embeddings within one k-means cluster."""

from __future__ import annotations

import numpy as np

from curate.dedup.search import block_pairs


def pairs_within_clusters(embeddings: np.ndarray, clusters: np.ndarray, threshold: float):
    """(a, b, similarity) with a < b in the same cluster and similarity > threshold."""
    order = np.argsort(clusters, kind="stable")
    bounds = np.flatnonzero(np.r_[True, clusters[order][1:] != clusters[order][:-1], True])
    found = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end - start > 1:
            members = np.sort(order[start:end])
            a, b, sim = block_pairs(embeddings, members, members, threshold, strict=True)
            found.append((a[a < b], b[a < b], sim[a < b]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(parts) for parts in zip(*found))
