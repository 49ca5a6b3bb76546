"""MetaCLIP's substring matching, exactly, without walking characters.

The reference pads a caption with a space on each side, surrounds each of , . ; : ? ! and the
backtick with spaces, turns tab, CR and LF into spaces, and says entry e matches when " e "
occurs in the result. Split that result on single spaces (keeping empty pieces): " e " occurs
exactly when e equals some run of consecutive pieces joined by single spaces, because a
piece starts right after a space and ends right before one. So matching is looking up every
run of pieces in a table of entries, extending a run only while it is still the beginning of
some longer entry.

All of it is vectorised: polars spaces, splits and hashes the pieces of a whole batch at once;
runs are hashed by combining piece hashes and looked up in an open-addressing table in numpy;
every hit is then compared as a string with its entry, so a hash collision cannot invent a
match."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

_PUNCTUATION = r"([,.;:?!`])"
_TO_SPACE = r"[\t\r\n]"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.uint64(0)
_SEED = 20230928


def spaced(captions: pl.Series) -> pl.Series:
    """The reference's spacing, without the outer padding: punctuation surrounded by spaces,
    tab, CR and LF turned into spaces."""
    return captions.str.replace_all(_PUNCTUATION, " $1 ").str.replace_all(_TO_SPACE, " ")


def _piece_hashes(pieces: pl.Series) -> np.ndarray:
    """A 64-bit hash per piece, never 0 (0 marks an empty slot)."""
    hashes = pieces.hash(seed=_SEED).to_numpy().copy()
    hashes[hashes == _EMPTY] = 1
    return hashes


def _run_hashes(piece_hashes: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """For each entry (its pieces at starts[i]:starts[i]+lengths[i]): the hash of all its
    pieces, and the hashes of its proper prefixes."""
    full = np.empty(len(starts), np.uint64)
    prefixes = []
    running = piece_hashes[starts].copy()
    for k in range(1, int(lengths.max(initial=1)) + 1):
        longer = lengths >= k
        if k > 1:
            running[longer] = running[longer] * _MIX + piece_hashes[starts[longer] + k - 1]
        full[lengths == k] = running[lengths == k]
        prefixes.append(running[lengths > k])
    return full, np.unique(np.concatenate(prefixes))


class HashTable:
    """Open addressing with linear probing over uint64 keys (never 0), built and probed with
    whole arrays at once. Each slot holds a key and the key's row in the caller's arrays."""

    def __init__(self, keys: np.ndarray):
        size = 1 << max(4, int(np.ceil(np.log2(max(len(keys), 1) * 4))))  # load <= 1/4: short probes
        self.mask = size - 1
        self.keys = np.zeros(size, np.uint64)
        self.rows = np.full(size, -1, np.int64)
        pending = np.arange(len(keys))
        slots = (keys & np.uint64(self.mask)).astype(np.int64)
        while len(pending):
            free = self.keys[slots[pending]] == _EMPTY
            candidates = pending[free]
            taken, first = np.unique(slots[candidates], return_index=True)
            self.keys[taken], self.rows[taken] = keys[candidates[first]], candidates[first]
            placed = np.zeros(len(keys), bool)
            placed[candidates[first]] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) & self.mask

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key, -1 where it is absent."""
        slots = (keys & np.uint64(self.mask)).astype(np.int64)
        found = self.keys[slots]
        rows = np.where(found == keys, self.rows[slots], -1)
        todo = np.flatnonzero((found != keys) & (found != _EMPTY))  # collisions: probe on
        while len(todo):
            slots[todo] = (slots[todo] + 1) & self.mask
            found = self.keys[slots[todo]]
            hit = found == keys[todo]
            rows[todo[hit]] = self.rows[slots[todo[hit]]]
            todo = todo[~hit & (found != _EMPTY)]
        return rows


class EntryMatcher:
    """Matches captions against MetaCLIP metadata entries; entry id = position in `entries`
    (a repeated entry string matches under each of its ids)."""

    def __init__(self, entries: list[str]):
        self.entries = pl.Series("entry", entries, dtype=pl.String)
        pieces = self.entries.str.split(" ")
        lengths = pieces.list.len().to_numpy().astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        with np.errstate(over="ignore"):
            full, prefixes = _run_hashes(_piece_hashes(pieces.explode()), starts, lengths)
        self._ids_by_hash = np.argsort(full, kind="stable")
        entry_keys, self._first, self._count = np.unique(full[self._ids_by_hash], return_index=True,
                                                         return_counts=True)
        keys = np.union1d(entry_keys, prefixes)
        at = np.minimum(np.searchsorted(entry_keys, keys), len(entry_keys) - 1)
        self._is_entry = entry_keys[at] == keys if len(entry_keys) else np.zeros(len(keys), bool)
        self._entry_row = at
        self._is_prefix = np.isin(keys, prefixes)
        self.table = HashTable(keys)

    def match(self, captions: pa.Array | pa.ChunkedArray) -> pa.ListArray:
        """Per caption, the sorted ids of the entries it matches (null caption: null)."""
        text = pl.Series(captions)
        pieces = spaced(text.fill_null("")).str.split(" ")
        counts = pieces.list.len().to_numpy().astype(np.int64)
        flat = pieces.explode()
        row_end = np.repeat(np.cumsum(counts), counts)
        with np.errstate(over="ignore"):
            start, length, entry_ids = self._candidates(_piece_hashes(flat), row_end)
        keep = self._same_text(flat, start, length, entry_ids)
        rows = np.repeat(np.arange(len(counts)), counts)[start[keep]]
        return _per_row_lists(rows, entry_ids[keep], len(counts), text.is_null().to_numpy())

    def _candidates(self, piece_hashes: np.ndarray, row_end: np.ndarray):
        """(first piece, number of pieces, entry id) of every run whose hash is an entry's."""
        start = np.arange(len(piece_hashes))
        running, length = piece_hashes.copy(), 1
        hits_start, hits_length, hits_key = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        while len(start):
            key = self.table.find(running)
            known = key >= 0
            start, running, key = start[known], running[known], key[known]
            entry = self._is_entry[key]
            hits_start.append(start[entry])
            hits_length.append(np.full(int(entry.sum()), length))
            hits_key.append(self._entry_row[key[entry]])
            grow = self._is_prefix[key] & (start + length < row_end[start])
            start, running = start[grow], running[grow]
            running = running * _MIX + piece_hashes[start + length]
            length += 1
        start, length, key = (np.concatenate(parts) for parts in (hits_start, hits_length, hits_key))
        count = self._count[key]
        if (count == 1).all():
            return start, length, self._ids_by_hash[self._first[key]]
        # a repeated entry string: one hit per id
        offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        ids = self._ids_by_hash[np.repeat(self._first[key], count) + offset]
        return np.repeat(start, count), np.repeat(length, count), ids

    def _same_text(self, flat: pl.Series, start: np.ndarray, length: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Which candidate runs really spell their entry (rules out hash collisions)."""
        same = np.empty(len(start), bool)
        for k in np.unique(length):
            at = np.flatnonzero(length == k)
            run = flat.gather(start[at])
            for j in range(1, int(k)):
                run = run + " " + flat.gather(start[at] + j)
            same[at] = (run == self.entries.gather(ids[at])).to_numpy()
        return same


def _per_row_lists(rows: np.ndarray, ids: np.ndarray, n_rows: int, null: np.ndarray) -> pa.ListArray:
    """A list<int32> per row: its distinct ids, ascending; null where `null`."""
    keys = np.sort(rows.astype(np.uint64) << np.uint64(32) | ids.astype(np.uint64))
    first = np.ones(len(keys), bool)  # np.unique is several times slower
    first[1:] = keys[1:] != keys[:-1]
    keys = keys[first]
    values = (keys & np.uint64(0xFFFFFFFF)).astype(np.int32)
    offsets = np.searchsorted(keys >> np.uint64(32), np.arange(n_rows + 1, dtype=np.uint64)).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), mask=pa.array(null))
