"""Pairs of embeddings at cosine similarity >= a threshold, with FAISS: an exact (flat) index for
small sets, an inverted-file (IVF) index for large ones, where each query only visits the
`nprobe` cells nearest to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 20_000  # a flat range search costs n^2 d: about 2 s at 20,000 x 512 on 2 cores
_QUERY_BATCH = 8192
_TRAIN_PER_CELL = 64  # FAISS warns below 39 points a cell


@dataclass(frozen=True)
class IndexChoice:
    """The index used: kind ("exact" or "ivf"), and for IVF its cells and cells visited."""

    kind: str
    nlist: int = 0
    nprobe: int = 0


def choose_index(n: int, kind: str = "auto", nlist: int | None = None, nprobe: int = 16) -> IndexChoice:
    """auto: exact up to EXACT_UP_TO embeddings, else IVF with 4 sqrt(n) cells (FAISS's rule of
    thumb); an explicit kind, nlist or nprobe wins."""
    if kind == "exact" or (kind == "auto" and n <= EXACT_UP_TO):
        return IndexChoice("exact")
    cells = nlist or max(1, min(int(4 * np.sqrt(n)), n // _TRAIN_PER_CELL or 1))
    return IndexChoice("ivf", cells, min(nprobe, cells))


def build_index(embeddings: np.ndarray, choice: IndexChoice, seed: int = 0):
    """A FAISS inner-product index holding every embedding (IVF trained on a seeded sample)."""
    import faiss

    d = embeddings.shape[1]
    if choice.kind == "exact":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, choice.nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(seeded_sample(embeddings, choice.nlist * _TRAIN_PER_CELL, seed))
        index.nprobe = choice.nprobe
    index.add(embeddings)
    return index


def seeded_sample(embeddings: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(embeddings) <= size:
        return embeddings
    chosen = np.sort(np.random.default_rng(seed).choice(len(embeddings), size, replace=False))
    return embeddings[chosen]


def similar_pairs(embeddings: np.ndarray, threshold: float, choice: IndexChoice, seed: int = 0,
                  progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, similarity) for every pair a < b found at similarity >= threshold, each pair once."""
    if len(embeddings) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    index = build_index(embeddings, choice, seed)
    found_a, found_b, found_sim = [], [], []
    for start in range(0, len(embeddings), _QUERY_BATCH):
        queries = embeddings[start:start + _QUERY_BATCH]
        lims, sims, ids = index.range_search(queries, threshold - 1e-6)  # FAISS keeps sim > radius
        rows = np.repeat(np.arange(start, start + len(queries)), np.diff(lims).astype(np.int64))
        keep = (ids != rows) & (sims >= threshold)
        found_a.append(np.minimum(rows, ids)[keep])
        found_b.append(np.maximum(rows, ids)[keep])
        found_sim.append(sims[keep])
        if progress is not None:
            progress(len(queries))
    a, b, sim = (np.concatenate(parts) for parts in (found_a, found_b, found_sim))
    return unique_pairs(a, b, sim, len(embeddings))


def unique_pairs(a: np.ndarray, b: np.ndarray, sim: np.ndarray, n: int):
    """Each (a, b) once (an IVF search may find a pair from one side only, or from both)."""
    key = a.astype(np.int64) * n + b
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    chosen = order[first]
    return a[chosen].astype(np.int64), b[chosen].astype(np.int64), sim[chosen].astype(np.float32)
