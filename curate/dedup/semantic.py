"""SemDeDup: spherical k-means on the embeddings (trained on a seeded sample, then every
embedding assigned to its nearest centroid), then every pair within a cluster compared."""

from __future__ import annotations

import numpy as np

from curate.dedup.search import seeded_sample

_BLOCK = 2048  # rows of a cluster's similarity matrix computed at once


def train_centroids(embeddings: np.ndarray, k: int, train_size: int, seed: int = 0, iterations: int = 20) -> np.ndarray:
    """k unit centroids (at most one per embedding) of spherical k-means on a seeded sample."""
    import faiss

    k = min(k, len(embeddings))
    if k == 0:
        return np.zeros((0, embeddings.shape[1]), np.float32)
    train = seeded_sample(embeddings, max(train_size, k), seed)
    kmeans = faiss.Kmeans(embeddings.shape[1], k, niter=iterations, seed=seed, spherical=True,
                          min_points_per_centroid=1, max_points_per_centroid=len(train) // k + 1)
    kmeans.train(train)
    return kmeans.centroids


def assign(embeddings: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest centroid of every embedding and the cosine similarity to it."""
    import faiss

    if len(embeddings) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    sims, ids = index.search(embeddings, 1)
    return ids[:, 0].astype(np.int32), sims[:, 0]


def pairs_within_clusters(embeddings: np.ndarray, clusters: np.ndarray, threshold: float):
    """(a, b, similarity) with a < b in the same cluster and similarity > threshold."""
    order = np.argsort(clusters, kind="stable")
    bounds = np.flatnonzero(np.r_[True, clusters[order][1:] != clusters[order][:-1], True])
    found = [_pairs(embeddings, np.sort(order[s:e]), threshold) for s, e in zip(bounds[:-1], bounds[1:]) if e - s > 1]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(parts) for parts in zip(*found))


def _pairs(embeddings: np.ndarray, members: np.ndarray, threshold: float):
    vectors = embeddings[members]
    a, b, s = [], [], []
    for start in range(0, len(members), _BLOCK):
        sims = vectors[start:start + _BLOCK] @ vectors.T
        rows, cols = np.nonzero(sims > threshold)
        rows_global = rows + start
        upper = cols > rows_global
        a.append(members[rows_global[upper]])
        b.append(members[cols[upper]])
        s.append(sims[rows[upper], cols[upper]])
    return np.concatenate(a), np.concatenate(b), np.concatenate(s).astype(np.float32)
