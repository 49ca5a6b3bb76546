"""The k-th smallest record of a pool-wide order, found shard by shard in bounded memory.

A record is a tuple of uint64 words, ordered lexicographically (a score's order-preserving key,
then a uid's two halves). A radix select over 16-bit digits: each pass counts, shard by shard,
the next digit of the records that share the digits fixed so far (a histogram of 65,536 counts,
summed over the shards: in parallel tasks by curate.tree_reduce); once the records left in the
band fit in `band` entries, they are gathered and sorted. Memory: one shard's records and the
histogram, or the band; never the pool. Ties take at most one pass per digit (four a word),
however many records share a value."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DIGIT_BITS = 16
DIGITS_PER_WORD = 64 // DIGIT_BITS
BAND = 1 << 20  # records gathered and sorted in one piece

Records = list[np.ndarray]  # one uint64 array per word, all of one length


def order_key(scores: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 scores (-0.0 counted as 0.0; no NaN)."""
    bits = (np.asarray(scores, np.float64) + 0.0).view(np.uint64)
    return bits ^ np.where(bits >> np.uint64(63), np.uint64(2**64 - 1), np.uint64(1 << 63))


def key_score(key: int) -> float:
    """The score an order_key came from."""
    bits = np.uint64(key)
    bits = bits ^ (np.uint64(1 << 63) if bits >> np.uint64(63) else np.uint64(2**64 - 1))
    return float(np.array([bits], np.uint64).view(np.float64)[0])


def kth_smallest(histogram: Callable[[tuple[int, ...]], np.ndarray],
                 band_records: Callable[[tuple[int, ...]], np.ndarray],
                 width: int, k: int, count: int, band: int = BAND) -> tuple[int, ...]:
    """The record at position k (0-based), in ascending order, of a pool of `count` records of
    `width` words each. histogram(fixed): the pool's counts of the next digit among the records
    whose leading digits are `fixed` (see digit_counts, per shard); band_records(fixed): those
    records, as a (n, width) array (see matching_records), asked for once n <= band."""
    fixed: list[int] = []  # the digits known so far
    matching = count  # records sharing them
    while matching > band and len(fixed) < width * DIGITS_PER_WORD:
        counts = histogram(tuple(fixed))
        below = np.cumsum(counts)
        digit = int(np.searchsorted(below, k, side="right"))
        k -= int(below[digit - 1]) if digit else 0
        matching = int(counts[digit])
        fixed.append(digit)
    if matching > band:  # every digit is fixed: the band is one value, repeated
        return tuple(_word(fixed[i:i + DIGITS_PER_WORD]) for i in range(0, len(fixed), DIGITS_PER_WORD))
    records = np.asarray(band_records(tuple(fixed)), np.uint64).reshape(-1, width)
    order = np.lexsort(tuple(records[:, i] for i in reversed(range(width))))
    return tuple(int(word) for word in records[order[k]])


def digit_counts(records: Records, fixed: tuple[int, ...]) -> np.ndarray:
    """One shard's share of a histogram pass: counts of the next digit (65,536 of them) among
    its records that share the fixed digits."""
    if not len(records[0]):
        return np.zeros(1 << DIGIT_BITS, np.int64)
    keep = _matches(records, fixed)
    return np.bincount(_digit([w[keep] for w in records], len(fixed)), minlength=1 << DIGIT_BITS).astype(np.int64)


def matching_records(records: Records, fixed: tuple[int, ...]) -> np.ndarray:
    """One shard's records that share the fixed digits, as a (n, width) uint64 array."""
    if not len(records[0]):
        return np.zeros((0, len(records)), np.uint64)
    keep = _matches(records, fixed)
    return np.stack([w[keep] for w in records], axis=1)


def _word(digits: list[int] | tuple[int, ...]) -> int:
    """The integer the digits spell, most significant first."""
    value = 0
    for digit in digits:
        value = (value << DIGIT_BITS) | digit
    return value


def _matches(records: Records, fixed: tuple[int, ...]) -> np.ndarray:
    """Which records share the fixed digits."""
    keep = np.ones(len(records[0]), bool)
    for word in range(-(-len(fixed) // DIGITS_PER_WORD)):
        digits = fixed[word * DIGITS_PER_WORD:(word + 1) * DIGITS_PER_WORD]
        shift = np.uint64(64 - DIGIT_BITS * len(digits))
        keep &= (records[word] >> shift) == np.uint64(_word(digits))
    return keep


def _digit(records: Records, position: int) -> np.ndarray:
    word, index = divmod(position, DIGITS_PER_WORD)
    shift = np.uint64(64 - DIGIT_BITS * (index + 1))
    return ((records[word] >> shift) & np.uint64((1 << DIGIT_BITS) - 1)).astype(np.int64)
