"""Fashion-MNIST: the `fashion-mnist` pool (60,000 training images) and `fashion-mnist-test` (10,000).

Read from the idx files of the Debian package dataset-fashion-mnist; each 28x28 grayscale
image is encoded as PNG (PIL, default settings: deterministic). The train/test split is the
dataset's own. Pool captions come from the label through one of TEMPLATES, drawn per index from
a generator seeded by `seed`; with `noise` > 0 that fraction of captions (the indices whose
uniform draw is below `noise`) is corrupted: a wrong label, junk text or an empty caption,
recorded in `is_noisy` and `noise_kind`. Test captions are the bare label names.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.pools.guard import write_guarded_pool
from curate.pools.images import png_from_array
from curate.pools.parallel import ordered_map
from curate.pools.sources import FASHION_MNIST, apt_path
from curate.pools.writer import PoolSample, classification_files, write_pool

PACKAGE = "dataset-fashion-mnist"
# The official classes (T-shirt/top, Trouser, ..., Ankle boot) as CLIP benchmarks name them.
CLASSNAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
TEMPLATES = ("a photo of a {label}", "a {label}", "product image: {label}", "a black and white photo of a {label}",
             "a low resolution photo of a {label}", "{label}")
# zero-shot prompts of the test set (written beside it as zeroshot_classification_templates.txt)
EVAL_TEMPLATES = ("a photo of a {c}.", "a black and white photo of a {c}.", "a low resolution photo of a {c}.",
                  "a product photo of a {c}.", "a photo of the {c}.", "a {c}.")
NOISE_KINDS = ("wrong_label", "junk", "empty")
COLUMNS = {"label": pa.int32(), "label_name": pa.string(), "index": pa.int32()}
POOL_COLUMNS = {**COLUMNS, "is_noisy": pa.bool_(), "noise_kind": pa.string()}
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiou])")
_JUNK = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789_"))


def _idx_path(split: str, what: str) -> Path:
    prefix = "train" if split == "train" else "t10k"
    return apt_path(FASHION_MNIST, PACKAGE) / f"{prefix}-{what}-idx{3 if what == 'images' else 1}-ubyte.gz"


def read_idx(path: Path) -> np.ndarray:
    """The array in an idx (gzipped) file of unsigned bytes."""
    data = gzip.decompress(path.read_bytes())
    if data[:3] != b"\0\0\x08":
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


@lru_cache(maxsize=2)
def _split(split: str) -> tuple[np.ndarray, np.ndarray]:
    return read_idx(_idx_path(split, "images")), read_idx(_idx_path(split, "labels"))


def _encode(item: tuple) -> PoolSample:
    key, pixels, caption, truth = item
    return PoolSample(key, png_from_array(pixels), "png", caption, truth)


def _caption(template: int, label: int) -> str:
    return _ARTICLE.sub(r"\1n ", TEMPLATES[template].format(label=CLASSNAMES[label]))


def _junk(seed: int, index: int) -> str:
    rng = np.random.default_rng([seed, index])
    return "".join(rng.choice(_JUNK, size=int(rng.integers(5, 16))).tolist())


def train_captions(labels: np.ndarray, noise: float, seed: int) -> list[tuple[str, str | None]]:
    """(caption, noise kind or None) per training index; draws for all indices, so a prefix is stable."""
    rng = np.random.default_rng(seed)
    templates, uniforms = rng.integers(len(TEMPLATES), size=len(labels)), rng.random(len(labels))
    kinds, shifts = rng.integers(len(NOISE_KINDS), size=len(labels)), rng.integers(1, 10, size=len(labels))
    captions = []
    for i, label in enumerate(labels.tolist()):
        kind = NOISE_KINDS[kinds[i]] if uniforms[i] < noise else None
        if kind == "wrong_label":
            label = (label + int(shifts[i])) % len(CLASSNAMES)
        text = "" if kind == "empty" else _junk(seed, i) if kind == "junk" else _caption(int(templates[i]), label)
        captions.append((text, kind))
    return captions


def pool_samples(*, limit: int | None = None, workers: int = 1, noise: float = 0.0, seed: int = 0, start: int = 0,
                 counts: dict | None = None) -> Iterator[PoolSample]:
    """The training images from index `start` with template captions, `noise` of them corrupted, by index."""
    images, labels = _split("train")
    captions = train_captions(labels, noise, seed)
    end = len(captions) if limit is None else start + limit
    items = [(f"train_{i:05d}", images[i], text, {"label": int(labels[i]), "label_name": CLASSNAMES[labels[i]],
                                                   "index": i, "is_noisy": kind is not None, "noise_kind": kind})
             for i, (text, kind) in enumerate(captions[:end]) if i >= start]
    return ordered_map(_encode, items, workers, chunksize=500)


def eval_inputs() -> list[Path]:
    """The files the test set is read from (for the guard's cache key)."""
    return [_idx_path("test", "images"), _idx_path("test", "labels")]


def eval_samples(*, limit: int | None = None, workers: int = 1) -> Iterator[PoolSample]:
    """The test images, caption = label name, by index."""
    images, labels = _split("test")
    items = [(f"test_{i:05d}", images[i], CLASSNAMES[label],
              {"label": label, "label_name": CLASSNAMES[label], "index": i})
             for i, label in enumerate(labels[:limit].tolist())]
    return ordered_map(_encode, items, workers, chunksize=500)


def build_fashion_mnist(out: Path, *, limit: int | None = None, workers: int = 1, noise: float = 0.0,
                        seed: int = 0, start: int = 0, samples_per_shard: int = 1000) -> dict:
    """The pool of the 60,000 training images (or `limit` of them from index `start`: disjoint
    slices make a pool and a trusted set); `noise` in [0, 1] corrupts that fraction of captions."""
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], got {noise!r}")
    if not isinstance(start, int) or not 0 <= start < 60000:
        raise ValueError(f"start must be an index in 0..59999, got {start!r}")
    samples = pool_samples(limit=limit, workers=workers, noise=noise, seed=seed, start=start)
    return write_guarded_pool(samples, out, name="fashion-mnist", columns=POOL_COLUMNS,
                              samples_per_shard=samples_per_shard,
                              manifest={"noise": noise, "seed": seed, "start": start, "templates": list(TEMPLATES),
                                        "source": {"package": PACKAGE, "path": str(FASHION_MNIST)}})


def build_fashion_mnist_test(out: Path, *, limit: int | None = None, workers: int = 1,
                             samples_per_shard: int = 1000) -> dict:
    """The 10,000 test images as a zero-shot classification set."""
    return write_pool(eval_samples(limit=limit, workers=workers), out, name="fashion-mnist-test", kind="eval",
                      columns=COLUMNS, samples_per_shard=samples_per_shard,
                      manifest={"task": "classification", "classnames": list(CLASSNAMES),
                                "source": {"package": PACKAGE, "path": str(FASHION_MNIST)}},
                      files=classification_files(CLASSNAMES, EVAL_TEMPLATES))
