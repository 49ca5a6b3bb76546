"""MetaCLIP balancing, as arrays: per entry p = min(1, t / count); a caption is kept when at
least one of its matched entries' independent draws succeeds, so P(keep) = 1 - prod(1 - p_i).
A draw is a pure function of (seed, uid, entry), so the kept set does not depend on how the
pool is sharded or which worker draws."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def flatten(ids: pa.ListArray | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(row, entry id) of every matched entry of every caption; null lists count as empty."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    lengths = ids.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(len(ids)), lengths)
    return rows, ids.flatten().to_numpy(zero_copy_only=False).astype(np.int64)


def probabilities(counts: np.ndarray, t: float) -> np.ndarray:
    """p = min(1, t / count) per entry (entries never matched get 1)."""
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, t / np.maximum(counts, 1).astype(np.float64))


def keep_probability(rows: np.ndarray, entry: np.ndarray, p: np.ndarray, n_rows: int) -> np.ndarray:
    """1 - prod(1 - p_i) over each row's entries (0 for a row without entries)."""
    with np.errstate(divide="ignore"):
        log_miss = np.bincount(rows, weights=np.log1p(-p[entry]), minlength=n_rows)
    return -np.expm1(log_miss)


def expected_size(rows: np.ndarray, entry: np.ndarray, counts: np.ndarray, t: float, n_rows: int) -> float:
    """Sum of P(keep) over the captions given as (row, entry) pairs."""
    return float(keep_probability(rows, entry, probabilities(counts, t), n_rows).sum())


def threshold_for_size(target: float, rows: np.ndarray, entry: np.ndarray, counts: np.ndarray,
                       n_rows: int, scale: float = 1.0) -> float:
    """The t whose expected size (times `scale`, for a sample of the captions) is `target`;
    expected size grows with t, so bisect (on log t: t spans orders of magnitude)."""
    low, high = 1e-9, float(max(counts.max(initial=1), 1))
    if scale * expected_size(rows, entry, counts, high, n_rows) <= target:
        return high
    for _ in range(64):
        middle = float(np.sqrt(low * high))
        if scale * expected_size(rows, entry, counts, middle, n_rows) < target:
            low = middle
        else:
            high = middle
        if high / low < 1 + 1e-9:
            break
    return high


def threshold_for_tail(counts: np.ndarray, p: float) -> float:
    """MetaCLIP 2's p_to_t: with the entry counts sorted ascending, the count at which the
    running share of matches (cumulative count / total) is nearest to `p`, the first such on a tie.
    p is the share of *matches* that fall in tail entries, not the share of entries."""
    ordered = np.sort(counts)
    total = ordered.sum()
    if total == 0:
        return 1.0
    share = np.cumsum(ordered) / total
    return float(ordered[np.abs(share - p).argmin()])


def tail_share(counts: np.ndarray, t: float) -> float:
    """MetaCLIP 2's t_to_p: the share of matches in entries counted fewer than t times."""
    total = counts.sum()
    return float(counts[counts < t].sum() / total) if total else 0.0


def threshold_for_tail_entries(counts: np.ndarray, fraction: float) -> float:
    """The smallest t such that `fraction` of the matched entries have count <= t (are tail
    entries, kept whole): a share of entries, where `threshold_for_tail` takes a share of matches."""
    matched = np.sort(counts[counts > 0])
    if not len(matched):
        return 1.0
    return float(matched[max(0, int(np.ceil(fraction * len(matched))) - 1)])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters nearby inputs."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform_draws(seed: int, uid_high: np.ndarray, uid_low: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """A uniform number in [0, 1) per (uid, entry) pair, the same on every machine."""
    with np.errstate(over="ignore"):
        x = _mix(np.uint64(seed) + _GOLDEN * entry.astype(np.uint64))
        x = _mix(_mix(x ^ uid_high) ^ uid_low)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def kept(seed: int, uid_high: np.ndarray, uid_low: np.ndarray, rows: np.ndarray, entry: np.ndarray,
         p: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row: did at least one of its entries' draws succeed? (uid arrays are per row.)"""
    success = uniform_draws(seed, uid_high[rows], uid_low[rows], entry) < p[entry]
    return np.bincount(rows[success], minlength=n_rows) > 0
