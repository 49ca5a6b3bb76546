"""The k-th smallest record of a pool-wide order, found shard by shard in bounded memory.

A record is a tuple of uint64 words, ordered lexicographically (a score's order-preserving key,
then a uid's two halves). A radix select over 16-bit digits: each pass streams every shard's
records, keeps those that share the digits fixed so far, and counts their next digit (a
histogram of 65,536 counts); once the records left in the band fit in `band` entries, they are
gathered and sorted. Memory: one shard's records and the histogram, or the band; never the pool.
Ties take at most one pass per digit (four a word), however many records share a value."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def kth_smallest(shards: Callable[[], Iterable[Records]], width: int, k: int, band: int = BAND) -> tuple[int, ...]:
    """The record at position k (0-based) of every shard's records (`width` words each) in
    ascending order. `shards()` yields each shard's records afresh at every pass."""
    fixed: list[int] = []  # the digits known so far
    while len(fixed) < width * DIGITS_PER_WORD:
        matching, histogram = _pass(shards, fixed)
        if matching <= band:
            return _from_band(shards, fixed, k)
        below = np.cumsum(histogram)
        digit = int(np.searchsorted(below, k, side="right"))
        k -= int(below[digit - 1]) if digit else 0
        fixed.append(digit)
    return tuple(_word(fixed[i:i + DIGITS_PER_WORD]) for i in range(0, len(fixed), DIGITS_PER_WORD))


def _word(digits: list[int]) -> int:
    """The integer the digits spell, most significant first."""
    value = 0
    for digit in digits:
        value = (value << DIGIT_BITS) | digit
    return value


def _matches(records: Records, fixed: list[int]) -> np.ndarray:
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


def _pass(shards: Callable[[], Iterable[Records]], fixed: list[int]) -> tuple[int, np.ndarray]:
    """(records sharing the fixed digits, histogram of their next digit)."""
    histogram = np.zeros(1 << DIGIT_BITS, np.int64)
    matching = 0
    for records in shards():
        if not len(records[0]):
            continue
        keep = _matches(records, fixed)
        matching += int(keep.sum())
        histogram += np.bincount(_digit([w[keep] for w in records], len(fixed)), minlength=1 << DIGIT_BITS)
    return matching, histogram


def _from_band(shards: Callable[[], Iterable[Records]], fixed: list[int], k: int) -> tuple[int, ...]:
    """Gather the records sharing the fixed digits, sort them, take position k among them."""
    parts = [[w[keep] for w in records] for records in shards() if len(records[0])
             for keep in [_matches(records, fixed)]]
    words = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    order = np.lexsort(tuple(reversed(words)))
    return tuple(int(w[order[k]]) for w in words)
