"""DataComp subset files: uids as a sorted numpy array of dtype u8,u8."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from curate.run import write_atomic

SUBSET_DTYPE = np.dtype("u8,u8")


def uids_to_u8u8(uids: list[str]) -> np.ndarray:
    """Turn 32-hex uids into DataComp's (high, low) uint64 pairs, in the given order."""
    if not uids:
        return np.zeros(0, dtype=SUBSET_DTYPE)
    raw = np.frombuffer(bytes.fromhex("".join(uids)), dtype=">u8").reshape(-1, 2)
    pairs = np.zeros(len(uids), dtype=SUBSET_DTYPE)
    pairs["f0"], pairs["f1"] = raw[:, 0], raw[:, 1]
    return pairs


def u8u8_to_uids(pairs: np.ndarray) -> list[str]:
    """The inverse of uids_to_u8u8."""
    return [f"{int(hi):016x}{int(lo):016x}" for hi, lo in pairs.tolist()]


def pair_keys(pairs: np.ndarray) -> np.ndarray:
    """uid pairs as 16-byte big-endian strings, which order as (high, low) does: numpy sorts
    those several times faster than records of two fields."""
    keys = np.empty(len(pairs), ">u8,>u8")
    keys["f0"], keys["f1"] = pairs["f0"], pairs["f1"]
    return keys.view("S16")


def sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    """uid pairs in ascending (high, low) order."""
    keys = np.sort(pair_keys(pairs)).view(">u8,>u8")
    ordered = np.empty(len(pairs), SUBSET_DTYPE)
    ordered["f0"], ordered["f1"] = keys["f0"], keys["f1"]
    return ordered


def first_repeat(pairs: np.ndarray) -> str | None:
    """A uid that occurs more than once, or None when all are distinct."""
    ordered = sorted_pairs(pairs)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return None
    return u8u8_to_uids(ordered[1:][same][:1])[0]


def write_subset(path: Path, pairs: np.ndarray) -> int:
    """Write uid pairs (see uids_to_u8u8) as the sorted subset file DataComp's tooling reads;
    return its length."""
    pairs = sorted_pairs(pairs)
    buffer = io.BytesIO()
    np.save(buffer, pairs)
    write_atomic(path, buffer.getvalue())
    return len(pairs)
