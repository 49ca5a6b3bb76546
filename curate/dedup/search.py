"""Pairs of embeddings at cosine similarity >= a threshold, by an inverted file (IVF):
spherical k-means cells (FAISS), each embedding listed in its nearest cell and compared with the
members of its `nprobe` nearest cells; small sets are one cell, every pair compared. The cells
are scanned as matrix products, one cell against all the queries that probe it: FAISS's own
IndexIVFFlat range search compares one query at a time, and had not finished 1,000,000 x 512
after 7 minutes on 2 cores, where this takes 40 s (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 20_000  # every pair compared costs n^2 d: about 2 s at 20,000 x 512 on 2 cores
_QUERY_BATCH = 2048  # rows of a similarity block: 8 KiB per member compared
TRAIN_PER_CELL = 32  # k-means of the cells trains on this many embeddings a cell


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
    cells = nlist or max(1, min(int(2 * np.sqrt(n)), n // TRAIN_PER_CELL or 1))
    return IndexChoice("ivf", cells, min(nprobe, cells))


def cell_pairs(embeddings: np.ndarray, cells: np.ndarray, homes: np.ndarray, probes: np.ndarray,
               identity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, row, similarity) of the pairs at similarity >= threshold among rows that are copies
    of embeddings listed in inverted-file cells: row i lists its embedding in cell cells[i]; the
    embedding's home cell (its nearest centroid) is homes[i] and the cells it probes are
    probes[i] (its home first); identity[i] is equal for copies of one embedding and ordered as
    their uids. In each cell every copy is compared with the cell's members (the copies at home
    there). A pair may be found in two cells, the home of either embedding when the other probes
    it: it is reported in the lower one only, and there once. So over all cells, however they are
    spread over tasks, each pair is found once."""
    if len(cells) == 0:
        return _no_pairs()
    order = np.argsort(cells, kind="stable")
    bounds = np.flatnonzero(np.r_[True, cells[order][1:] != cells[order][:-1], True])
    found = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        copies = order[start:end]
        cell = cells[copies[0]]
        members = copies[homes[copies] == cell]
        if len(members) == 0:
            continue
        q, m, sim = block_pairs(embeddings, copies, members, threshold)
        at_home = homes[q] == cell  # both members here: found twice, kept once
        lower_elsewhere = (homes[q] < cell) & (probes[m] == homes[q][:, None]).any(axis=1)
        keep = np.where(at_home, identity[q] < identity[m], ~lower_elsewhere)
        found.append((q[keep], m[keep], sim[keep]))
    return tuple(np.concatenate(parts) for parts in zip(*found)) if found else _no_pairs()


def _no_pairs():
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


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
