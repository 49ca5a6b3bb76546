"""Contamination guard: the sha256 of every evaluation item, so no pool can contain one.

Each evaluation set is encoded from its package exactly as its builder encodes it (the very
same sample functions), hashed, and never written. Pool builders refuse any item whose image
bytes hash into this set. The set is cached in memory per process, keyed by the size and
mtime of the files each evaluation set is read from, so a changed package is re-read.
Evaluation sets whose package is not installed are skipped and named in the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from curate.pools.sources import MissingPackageError
from curate.pools.writer import PoolSample, refuse, write_pool


@dataclass(frozen=True)
class EvalGuard:
    """The image hashes of all evaluation items that could be read, and what was checked."""

    hashes: frozenset[str]
    checked: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        """What `_pool.json` records: items hashed per evaluation set, and the sets not readable."""
        return {"checked": dict(sorted(self.checked.items())), "unavailable": dict(sorted(self.unavailable.items()))}


_CACHE: dict[tuple, frozenset[str]] = {}


def _eval_sources() -> dict[str, tuple[Callable[[], list[Path]], Callable[[], Iterable[PoolSample]]]]:
    """Evaluation set -> (its input files, its samples)."""
    # Imported here: these modules import this one to guard their pools.
    from curate.pools import fashion_mnist, flags, mnist, tuxpaint

    return {
        "fashion-mnist-test": (fashion_mnist.eval_inputs, fashion_mnist.eval_samples),
        "flags-eval": (flags.eval_inputs, flags.eval_samples),
        "mnist-5k": (mnist.eval_inputs, mnist.eval_samples),
        "tuxpaint-retrieval": (tuxpaint.eval_inputs, tuxpaint.eval_samples),
    }


def _fingerprint(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def _hashes(name: str, inputs: Callable[[], list[Path]],
            samples: Callable[[], Iterable[PoolSample]]) -> frozenset[str]:
    key = (name, _fingerprint(inputs()))
    if key not in _CACHE:
        _CACHE[key] = frozenset(hashlib.sha256(s.image).hexdigest() for s in samples())
    return _CACHE[key]


def eval_guard() -> EvalGuard:
    """The sha256 set of every readable evaluation item (computed once per process and package state)."""
    hashes: set[str] = set()
    checked, unavailable = {}, {}
    for name, (inputs, samples) in _eval_sources().items():
        try:
            found = _hashes(name, inputs, samples)
        except MissingPackageError as error:
            unavailable[name] = str(error)
            continue
        checked[name] = len(found)
        hashes |= found
    return EvalGuard(frozenset(hashes), checked, unavailable)


def refuse_eval_items(samples: Iterable[PoolSample], refused: list[str],
                      guard: EvalGuard | None = None) -> Iterator[PoolSample]:
    """The samples that are not evaluation items; the keys of those that are go to `refused`."""
    return refuse(samples, (guard or eval_guard()).hashes, refused)


def write_guarded_pool(samples: Iterable[PoolSample], out: Path, *, name: str, columns: dict,
                       samples_per_shard: int, manifest: dict) -> dict:
    """`write_pool` for a pool: evaluation items are refused and the guard is recorded in `_pool.json`.

    Call it after the samples' sources are located, so a missing package fails before the
    guard spends time hashing evaluation sets.
    """
    guard = eval_guard()
    return write_pool(samples, out, name=name, columns=columns, samples_per_shard=samples_per_shard,
                      exclude=guard.hashes, manifest={**manifest, "eval_guard": guard.summary()})
