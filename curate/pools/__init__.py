"""Sample pools and evaluation sets: builders of input data sets, by name.

`POOLS` holds the pools a pipeline ingests, `EVAL_SETS` the held-out evaluation sets; every
real pool refuses evaluation items (see `curate.pools.guard`). `build(name, out, **options)`
runs either kind and returns its `_pool.json` dict. The split rules are in docs/pools.md.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path

from curate.pools.datacomp_like import build_datacomp_like
from curate.pools.emoji import build_emoji, build_openmoji
from curate.pools.fashion_mnist import build_fashion_mnist, build_fashion_mnist_test
from curate.pools.flags import build_flags, build_flags_eval
from curate.pools.mnist import build_mnist_5k
from curate.pools.openclipart import build_openclipart
from curate.pools.sources import MissingPackageError, PoolError
from curate.pools.synthetic import build_synthetic_pool
from curate.pools.tuxpaint import build_tuxpaint, build_tuxpaint_retrieval
from curate.pools.web import build_web
from curate.pools.writer import MANIFEST, remove_previous, write_manifest

POOLS: dict[str, Callable[..., dict]] = {
    "synthetic": build_synthetic_pool,
    "tuxpaint": build_tuxpaint,
    "openclipart": build_openclipart,
    "emoji": build_emoji,
    "openmoji": build_openmoji,
    "flags": build_flags,
    "fashion-mnist": build_fashion_mnist,
    "web": build_web,
    "datacomp-like": build_datacomp_like,
}
EVAL_SETS: dict[str, Callable[..., dict]] = {
    "fashion-mnist-test": build_fashion_mnist_test,
    "mnist-5k": build_mnist_5k,
    "flags-eval": build_flags_eval,
    "tuxpaint-retrieval": build_tuxpaint_retrieval,
}

__all__ = ["EVAL_SETS", "POOLS", "MissingPackageError", "PoolError", "build", "builder", "ensure", "options"]
_UNRECORDED = {"workers", "progress"}  # change how a pool is built, never what it holds


def builder(name: str) -> Callable[..., dict]:
    """The builder of a pool or evaluation set; an unknown name is an error listing the known ones."""
    found = POOLS.get(name) or EVAL_SETS.get(name)
    if found is None:
        raise PoolError(f"unknown pool {name!r}; pools: {', '.join(POOLS)}; "
                        f"evaluation sets: {', '.join(EVAL_SETS)}")
    return found


def options(name: str) -> dict[str, object]:
    """The options a builder takes, with their defaults (`inspect.Parameter.empty` when required)."""
    parameters = list(inspect.signature(builder(name)).parameters.values())[1:]  # after `out`
    return {p.name: p.default for p in parameters if p.kind is not p.VAR_KEYWORD}


def build(name: str, out: Path, **settings) -> dict:
    """Build the pool or evaluation set `name` into `out`; return its manifest.

    Unknown options, bad values and missing packages raise PoolError (a CurateError) saying what to do.
    A pool already in `out` is replaced: what its `_pool.json` says it wrote (shards, `files/`,
    `urls/`, the manifest) is removed first; any other file in `out` is left alone.
    The options are recorded in `_pool.json` under `options`, for `ensure`.
    """
    make, accepted = builder(name), options(name)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise PoolError(f"{name} does not take {', '.join(unknown)}; its options: {', '.join(accepted)}")
    missing = sorted(k for k, v in accepted.items() if v is inspect.Parameter.empty and k not in settings)
    if missing:
        raise PoolError(f"{name} needs {', '.join(missing)}")
    _check_counts(name, settings)
    if (Path(out) / MANIFEST).exists():
        remove_previous(Path(out))  # an earlier build: none of its outputs may outlive this one
    try:
        manifest = make(Path(out), **settings)
    except ValueError as error:
        raise PoolError(f"{name}: {error}") from None
    return write_manifest(Path(out), {**manifest, "options": _recorded(name, settings)})


def _check_counts(name: str, settings: dict) -> None:
    """Refuse a bad `limit` or `workers` before anything is read or written."""
    limit, workers = settings.get("limit"), settings.get("workers", 1)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise PoolError(f"{name}: limit must be a non-negative integer or None, got {limit!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise PoolError(f"{name}: workers must be >= 1, got {workers!r}")


def _recorded(name: str, settings: dict) -> dict:
    """The options that decide what a build holds, defaults filled in, as `_pool.json` records them."""
    chosen = {**{k: d for k, d in options(name).items() if d is not inspect.Parameter.empty}, **settings}
    return {k: v for k, v in sorted(chosen.items()) if k not in _UNRECORDED}


def ensure(name: str, out: Path, **settings) -> tuple[dict, bool]:
    """(manifest, built): build `name` into `out` unless it already holds it, built by `build` with these options.

    Only the options are compared: after a package upgrade, build again with `build`.
    """
    try:
        current = json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        current = None
    builder(name)
    if current and current.get("name") == name and current.get("options") == _recorded(name, settings):
        return current, False
    return build(name, out, **settings), True
