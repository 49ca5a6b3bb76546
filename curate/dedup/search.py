"""Pairs of embeddings at cosine similarity >= a threshold: an exact FAISS range search for
small sets; for large ones an inverted file (IVF): spherical k-means cells (FAISS), each
embedding listed in its nearest cell and compared with the members of its `nprobe` nearest
cells. The cells are scanned as matrix products, one cell against all the queries that probe
it: FAISS's own IndexIVFFlat range search compares one query at a time, and had not finished
1,000,000 x 512 after 7 minutes on 2 cores, where this takes 40 s (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.dedup.kmeans import nearest, train_centroids

EXACT_UP_TO = 20_000  # a flat range search costs n^2 d: about 2 s at 20,000 x 512 on 2 cores
_QUERY_BATCH = 2048  # rows of a similarity block: 8 KiB per member compared
_TRAIN_PER_CELL = 32


@dataclass(frozen=True)
class IndexChoice:
    """The index used: kind ("exact" or "ivf"), and for IVF its cells and cells visited."""

    kind: str
    nlist: int = 0
    nprobe: int = 0


def choose_index(n: int, kind: str = "auto", nlist: int | None = None, nprobe: int = 4) -> IndexChoice:
    """auto: exact up to EXACT_UP_TO embeddings, else IVF with 2 sqrt(n) cells; an explicit
    kind, nlist or nprobe wins."""
    if kind == "exact" or (kind == "auto" and n <= EXACT_UP_TO):
        return IndexChoice("exact")
    cells = nlist or max(1, min(int(2 * np.sqrt(n)), n // _TRAIN_PER_CELL or 1))
    return IndexChoice("ivf", cells, min(nprobe, cells))


def similar_pairs(embeddings: np.ndarray, threshold: float, choice: IndexChoice, seed: int = 0,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, similarity) for every pair a < b found at similarity >= threshold, each pair once."""
    if len(embeddings) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    if choice.kind == "exact":
        return _exact_pairs(embeddings, threshold)
    return _ivf_pairs(embeddings, threshold, choice, seed)


def _exact_pairs(embeddings: np.ndarray, threshold: float):
    import faiss

    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    found_a, found_b, found_sim = [], [], []
    for start in range(0, len(embeddings), _QUERY_BATCH):
        queries = embeddings[start:start + _QUERY_BATCH]
        lims, sims, ids = index.range_search(queries, threshold - 1e-6)  # FAISS keeps sim > radius
        rows = np.repeat(np.arange(start, start + len(queries)), np.diff(lims).astype(np.int64))
        keep = (ids < rows) & (sims >= threshold)  # each pair once, from its later row
        found_a.append(ids[keep].astype(np.int64))
        found_b.append(rows[keep])
        found_sim.append(sims[keep])
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_sim).astype(np.float32)


def _ivf_pairs(embeddings: np.ndarray, threshold: float, choice: IndexChoice, seed: int):
    centroids = train_centroids(embeddings, choice.nlist, choice.nlist * _TRAIN_PER_CELL, seed, iterations=10)
    _, probes = nearest(embeddings, centroids, choice.nprobe)
    members = _lists(probes[:, 0], len(centroids))
    queries = _lists(probes.ravel(), len(centroids), per_row=choice.nprobe)
    found = [block_pairs(embeddings, queries[c], members[c], threshold) for c in range(len(centroids))
             if len(members[c]) and len(queries[c])]
    a, b, sim = (np.concatenate(parts) for parts in zip(*found))
    return unique_pairs(np.minimum(a, b), np.maximum(a, b), sim, len(embeddings))


def _lists(cells: np.ndarray, count: int, per_row: int = 1) -> list[np.ndarray]:
    """For each cell, the rows listed in it (cells: one or per_row cells a row, row-major)."""
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(count + 1))
    rows = order // per_row
    return [rows[bounds[c]:bounds[c + 1]] for c in range(count)]


def block_pairs(embeddings: np.ndarray, queries: np.ndarray, members: np.ndarray, threshold: float,
                strict: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, member, similarity) at similarity >= threshold (> when strict), a row never with
    itself: blocks of queries against all members, each block one matrix product."""
    targets = embeddings[members]
    a, b, s = [], [], []
    for start in range(0, len(queries), _QUERY_BATCH):
        rows = queries[start:start + _QUERY_BATCH]
        sims = embeddings[rows] @ targets.T
        i, j = np.nonzero(sims > threshold if strict else sims >= threshold)
        other = rows[i] != members[j]
        a.append(rows[i][other])
        b.append(members[j][other])
        s.append(sims[i[other], j[other]])
    return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64), np.concatenate(s).astype(np.float32)


def unique_pairs(a: np.ndarray, b: np.ndarray, sim: np.ndarray, n: int):
    """Each (a, b) once (an IVF search may find a pair from one side only, or from both)."""
    key = a.astype(np.int64) * n + b
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    chosen = order[first]
    return a[chosen].astype(np.int64), b[chosen].astype(np.int64), sim[chosen].astype(np.float32)
