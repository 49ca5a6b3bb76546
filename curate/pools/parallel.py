"""An order-preserving map over worker processes, so parallel builds write the same bytes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 1, chunksize: int = 16) -> Iterator[R]:
    """fn over items, results in input order; `fn` must be a module-level function when workers > 1."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    items = list(items)
    if workers == 1 or len(items) <= chunksize:
        yield from map(fn, items)
        return
    # spawn, not fork: the caller may hold threads (Arrow, Polars, Ray) whose locks a forked
    # child would inherit mid-use.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(fn, items, chunksize=chunksize)
