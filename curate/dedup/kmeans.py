"""Spherical k-means with FAISS (trained on a seeded sample) and nearest-centroid lookup, used by
the inverted file of the near-duplicate search and by SemDeDup's clusters."""

from __future__ import annotations

import numpy as np


def seeded_sample(embeddings: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` rows, chosen by seed, in their original order."""
    if len(embeddings) <= size:
        return embeddings
    chosen = np.sort(np.random.default_rng(seed).choice(len(embeddings), size, replace=False))
    return embeddings[chosen]


def seeded_hash(uids, seed: int) -> np.ndarray:
    """A uint64 per uid, mixed with the seed: the order of a seeded sample that does not depend
    on where a uid lies in the pool."""
    import polars as pl

    return pl.Series(uids, dtype=pl.String).hash(seed=seed).to_numpy()


def train_centroids(embeddings: np.ndarray, k: int, train_size: int, seed: int = 0, iterations: int = 20,
                    spherical: bool = True) -> np.ndarray:
    """k centroids (at most one per embedding) of k-means on a seeded sample: unit ones when
    spherical, else plain L2 k-means (DataComp's image-based filter)."""
    import faiss

    k = min(k, len(embeddings))
    if k == 0:
        return np.zeros((0, embeddings.shape[1]), np.float32)
    train = seeded_sample(embeddings, max(train_size, k), seed)
    kmeans = faiss.Kmeans(embeddings.shape[1], k, niter=iterations, seed=seed, spherical=spherical,
                          min_points_per_centroid=1, max_points_per_centroid=len(train) // k + 1)
    kmeans.train(train)
    return kmeans.centroids


def nearest(embeddings: np.ndarray, centroids: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, centroid ids) of the k nearest centroids of every embedding, nearest first."""
    import faiss

    if len(embeddings) == 0:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    return index.search(embeddings, k)


def split_parts(labels: np.ndarray, k: int, scale: float, max_size: int) -> np.ndarray:
    """Parts per cluster for a second-level k-means: ceil(estimated size / max_size), a cluster's
    size estimated as its members in the training sample x scale (the pool over the sample); at
    most one part per member in the sample."""
    in_sample = np.bincount(labels, minlength=k)
    return np.clip(np.ceil(in_sample * scale / max_size), 1, np.maximum(in_sample, 1)).astype(np.int64)


def split_centroids(sample: np.ndarray, labels: np.ndarray, centroids: np.ndarray, parts: np.ndarray, seed: int,
                    iterations: int) -> np.ndarray:
    """Every cluster's centroid, or, for a cluster of more than one part, the centroids of a
    k-means of its members in the sample, stacked in cluster order: the centroids of the parts."""
    rows = [centroids[i:i + 1] if count == 1 else
            train_centroids(sample[labels == i], int(count), int((labels == i).sum()), seed, iterations)
            for i, count in enumerate(parts)]
    return np.concatenate(rows) if rows else centroids
