"""Procedural synthetic image-text pool with planted duplicates and junk captions.

Every sample is a pure function of ``(seed, index)``, so shards can be generated
independently, in any order and in parallel, and the output is byte-reproducible.
Each sample carries its ground truth (shape, colours, junk flag, duplicate source)
so curation stages can be checked against it.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from curate.io.tars import tar_bytes
from curate.pools.writer import MANIFEST, write_manifest
from curate.run import write_atomic

FORMATS = ("webdataset", "parquet", "folder")
_SUFFIXES = {"webdataset": (".tar", ".parquet"), "parquet": (".parquet",), "folder": ("", ".parquet")}  # per shard
T = TypeVar("T")

COLORS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (220, 30, 30)),
    ("orange", (245, 140, 20)),
    ("yellow", (245, 220, 30)),
    ("green", (40, 170, 60)),
    ("blue", (30, 80, 220)),
    ("purple", (130, 50, 180)),
    ("pink", (245, 130, 190)),
    ("brown", (120, 75, 35)),
    ("black", (15, 15, 15)),
    ("white", (245, 245, 245)),
    ("gray", (128, 128, 128)),
)
SHAPES = ("circle", "square", "triangle", "star", "ring")
# (caption word, radius of the shape's circumscribed circle as a fraction of the image side)
SIZES = (("small", 0.15), ("medium", 0.25), ("large", 0.38))
WHERE = (
    ("in the top left corner", "at the top", "in the top right corner"),
    ("on the left", "in the center", "on the right"),
    ("in the bottom left corner", "at the bottom", "in the bottom right corner"),
)
TEMPLATES = (
    "a {color} {shape} on a {bg} background",
    "{bg} background with a {size} {color} {shape}",
    "a {size} {color} {shape} {where} of a {bg} image",
    "photo of a {color} {shape} against {bg}",
    "{color} {shape}, {bg} backdrop",
    "an illustration of a {size} {color} {shape}",
    "a simple {bg} picture showing a {color} {shape} {where}",
    "{size} {shape} in {color}",
)
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiou])")

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua"
).split()
_ALNUM = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
_MASH_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "jkjkjkl;", "sdfsdf")
_CAMERA = ("IMG_{:04d}.JPG", "DSC{:05d}.jpg", "DSCN{:04d}.JPG", "P{:07d}.jpg", "GOPR{:04d}.JPG",
           "image{}.png")
_PLACEHOLDERS = ("untitled", "Untitled", "image", "photo", "untitled-1", "no title", "null", "N/A")

# One batch of uniforms per sample, consumed in this fixed order so that a sample's
# content never depends on which branch an earlier draw took.
_U_DUP, _U_JUNK, _U_SHAPE, _U_COLOR, _U_BG, _U_SIZE, _U_X, _U_Y, _U_ANGLE, _U_TEMPLATE = range(10)
_N_UNIFORMS = 10
_MAX_DUP_TRIES = 64

PARQUET_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("caption", pa.string()),
        ("shape", pa.string()),
        ("color", pa.string()),
        ("background", pa.string()),
        ("is_junk", pa.bool_()),
        ("duplicate_of", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ]
)


class Sample(NamedTuple):
    """One generated sample: encoded image, caption and ground truth."""

    key: str
    jpeg: bytes
    caption: str
    shape: str
    color: str
    background: str
    is_junk: bool
    duplicate_of: str | None

    def truth(self) -> dict:
        """Ground-truth dict as written to ``<key>.json``."""
        return {
            "key": self.key,
            "caption": self.caption,
            "shape": self.shape,
            "color": self.color,
            "background": self.background,
            "is_junk": self.is_junk,
            "duplicate_of": self.duplicate_of,
        }


# ---------------------------------------------------------------- generation


def _rng(seed: int, i: int) -> tuple[np.random.Generator, list[float]]:
    rng = np.random.default_rng([seed, i])
    return rng, rng.random(_N_UNIFORMS).tolist()


def _pick(options: Sequence[T], u: float) -> T:
    return options[min(int(u * len(options)), len(options) - 1)]


# Unit polygons as (radius factor, angle) per vertex, all inside the unit circle so a
# shape placed at least r from every edge is never clipped.
_POLYGONS = {
    "square": [(1.0, k * math.pi / 2) for k in range(4)],
    "triangle": [(1.0, k * 2 * math.pi / 3) for k in range(3)],
    "star": [(1.0 if k % 2 == 0 else 0.45, k * math.pi / 5) for k in range(10)],
}


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    return [(cx + r * f * math.cos(angle + a), cy + r * f * math.sin(angle + a)) for f, a in _POLYGONS[shape]]


def _draw(size: int, shape: str, fg: tuple, bg: tuple, cx: float, cy: float, r: float, angle: float) -> bytes:
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fg)
    elif shape == "ring":
        draw.ellipse(box, outline=fg, width=max(2, round(r / 3)))
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fg)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _junk_caption(rng: np.random.Generator) -> str:
    kind = int(rng.integers(5))
    if kind == 0:
        return "".join(rng.choice(_ALNUM, size=int(rng.integers(6, 20))).tolist())
    if kind == 1:
        return _pick(_CAMERA, rng.random()).format(int(rng.integers(10000)))
    if kind == 2:
        return _pick(_PLACEHOLDERS, rng.random())
    if kind == 3:
        return " ".join(rng.choice(_LOREM, size=int(rng.integers(3, 10))).tolist())
    row = _pick(_MASH_ROWS, rng.random())
    return "".join(row[j] for j in rng.integers(len(row), size=int(rng.integers(5, 16))).tolist())


def _caption(u: list[float], shape: str, color: str, bg: str, size: str, where: str) -> str:
    text = _pick(TEMPLATES, u[_U_TEMPLATE]).format(shape=shape, color=color, bg=bg, size=size, where=where)
    return _ARTICLE.sub(r"\1n ", text)


def _original(seed: int, i: int, image_size: int, junk_fraction: float) -> Sample:
    """Sample ``i`` rendered as an original, whatever its duplicate draw says."""
    rng, u = _rng(seed, i)
    shape = _pick(SHAPES, u[_U_SHAPE])
    ci = _pick(range(len(COLORS)), u[_U_COLOR])
    # Offset in 1..len-1 guarantees the background differs from the shape colour.
    bi = (ci + 1 + _pick(range(len(COLORS) - 1), u[_U_BG])) % len(COLORS)
    size_word, frac = _pick(SIZES, u[_U_SIZE])
    r = frac * image_size
    cx = r + u[_U_X] * (image_size - 2 * r)
    cy = r + u[_U_Y] * (image_size - 2 * r)
    where = WHERE[min(int(3 * cy / image_size), 2)][min(int(3 * cx / image_size), 2)]
    (color, fg), (bg, bg_rgb) = COLORS[ci], COLORS[bi]
    jpeg = _draw(image_size, shape, fg, bg_rgb, cx, cy, r, u[_U_ANGLE] * 2 * math.pi)
    is_junk = u[_U_JUNK] < junk_fraction
    caption = _junk_caption(rng) if is_junk else _caption(u, shape, color, bg, size_word, where)
    return Sample(f"{i:09d}", jpeg, caption, shape, color, bg, is_junk, None)


def _is_duplicate(u: list[float], i: int, duplicate_fraction: float) -> bool:
    return i > 0 and u[_U_DUP] < duplicate_fraction


def _duplicate_source(rng: np.random.Generator, seed: int, i: int, duplicate_fraction: float) -> int:
    """An earlier original ``j < i``, found by looking only at candidates' own draws."""
    for _ in range(_MAX_DUP_TRIES):
        j = int(rng.integers(i))
        if not _is_duplicate(_rng(seed, j)[1], j, duplicate_fraction):
            return j
    return 0  # sample 0 is always an original; only reached for fractions near 1


def make_sample(seed: int, i: int, *, image_size: int = 64, duplicate_fraction: float = 0.05,
                junk_fraction: float = 0.05) -> Sample:
    """Generate sample ``i`` of the pool with ``seed``; a pure function of its arguments.

    A planted duplicate copies its source's image bytes, caption and truth (``is_junk``
    included) and sets ``duplicate_of`` to the source key.
    """
    rng, u = _rng(seed, i)
    if not _is_duplicate(u, i, duplicate_fraction):
        return _original(seed, i, image_size, junk_fraction)
    j = _duplicate_source(rng, seed, i, duplicate_fraction)
    src = _original(seed, j, image_size, junk_fraction)
    return src._replace(key=f"{i:09d}", duplicate_of=src.key)


# ---------------------------------------------------------------- writing


def _tar(samples: list[Sample]) -> bytes:
    """The WebDataset shard of the samples: <key>.jpg, <key>.txt, <key>.json."""
    return tar_bytes([{"__key__": s.key, "jpg": s.jpeg, "txt": s.caption,
                       "json": json.dumps(s.truth(), sort_keys=True)} for s in samples])


def _write_parquet(path: Path, samples: list[Sample], image_size: int, with_image: bool) -> None:
    cols = {name: [getattr(s, name) for s in samples] for name in PARQUET_SCHEMA.names[:7]}
    cols["width"] = cols["height"] = [image_size] * len(samples)
    schema = PARQUET_SCHEMA
    if with_image:
        cols["image"] = [s.jpeg for s in samples]
        schema = schema.append(pa.field("image", pa.binary()))
    buffer = io.BytesIO()
    pq.write_table(pa.table(cols, schema=schema), buffer)
    write_atomic(path, buffer.getvalue())


def _write_folder(folder: Path, samples: list[Sample]) -> None:
    folder.mkdir(exist_ok=True)
    for s in samples:
        write_atomic(folder / f"{s.key}.jpg", s.jpeg)
        write_atomic(folder / f"{s.key}.txt", s.caption.encode("utf-8"))


def _build_shard(out: str, shard: int, start: int, stop: int, seed: int, image_size: int,
                 duplicate_fraction: float, junk_fraction: float, fmt: str) -> int:
    """Generate and write one shard; module-level so spawned workers can import it."""
    root, name = Path(out), f"{shard:05d}"
    samples = [make_sample(seed, i, image_size=image_size, duplicate_fraction=duplicate_fraction,
                           junk_fraction=junk_fraction) for i in range(start, stop)]
    if fmt == "webdataset":
        write_atomic(root / f"{name}.tar", _tar(samples))
    elif fmt == "folder":
        _write_folder(root / name, samples)
    _write_parquet(root / f"{name}.parquet", samples, image_size, with_image=fmt == "parquet")
    return len(samples)


# ---------------------------------------------------------------- driver


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_fraction(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(0 <= value < 1)


def _validate(n: int, samples_per_shard: int, seed: int, image_size: int, duplicate_fraction: float,
              junk_fraction: float, fmt: str, workers: int) -> None:
    for name, value in (("n", n), ("samples_per_shard", samples_per_shard), ("seed", seed),
                        ("image_size", image_size), ("workers", workers)):
        if not _is_int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    checks = (
        (seed >= 0, f"seed must be a non-negative integer, got {seed!r}"),
        (n >= 1, f"n must be >= 1, got {n!r}"),
        (samples_per_shard >= 1, f"samples_per_shard must be >= 1, got {samples_per_shard!r}"),
        (image_size >= 8, f"image_size must be >= 8 pixels, got {image_size!r}"),
        (_is_fraction(duplicate_fraction),
         f"duplicate_fraction must be in [0, 1), got {duplicate_fraction!r}"),
        (_is_fraction(junk_fraction), f"junk_fraction must be in [0, 1), got {junk_fraction!r}"),
        (fmt in FORMATS, f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}"),
        (workers >= 1, f"workers must be >= 1, got {workers!r}"),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _run_shards(jobs: list[tuple], workers: int, progress: Callable[[int], None] | None) -> None:
    report = progress or (lambda _: None)
    if workers == 1:
        for job in jobs:
            report(_build_shard(*job))
        return
    # spawn, not fork: the caller may hold threads (Arrow, Polars, Ray) whose locks a
    # forked child would inherit mid-use.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = [pool.submit(_build_shard, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                report(future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def build_synthetic_pool(out: Path, n: int, *, samples_per_shard: int = 1000, seed: int = 0,
                         image_size: int = 64, duplicate_fraction: float = 0.05,
                         junk_fraction: float = 0.05, fmt: str = "webdataset",
                         workers: int = 1, progress: Callable[[int], None] | None = None) -> dict:
    """Procedural shapes with captions, planted duplicates and junk captions; ``n`` samples.

    Writes the pool to ``out`` and returns its ``_pool.json`` dict.

    Layout per shard ``sssss``: ``sssss.tar`` (webdataset), ``sssss/`` (folder) and
    always ``sssss.parquet`` with the ground truth (plus ``image`` bytes for fmt="parquet").
    Output is byte-identical for any ``workers``; ``progress(k)`` gets the sample count of
    each finished shard. ``_pool.json`` is written last, so its presence marks a complete build;
    its ``outputs`` names the shard files and folders, which a rebuild removes (and nothing else).
    """
    _validate(n, samples_per_shard, seed, image_size, duplicate_fraction, junk_fraction, fmt, workers)
    n, samples_per_shard, seed, image_size = int(n), int(samples_per_shard), int(seed), int(image_size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # A stale manifest would vouch for a half-rebuilt pool if this build is interrupted.
    (out / MANIFEST).unlink(missing_ok=True)
    jobs = [(str(out), s, start, min(start + samples_per_shard, n), seed, image_size,
             float(duplicate_fraction), float(junk_fraction), fmt)
            for s, start in enumerate(range(0, n, samples_per_shard))]
    _run_shards(jobs, int(workers), progress)
    meta = {
        "name": "synthetic", "format": fmt, "n": n, "seed": seed,
        "samples_per_shard": samples_per_shard, "shards": [f"{s:05d}" for s in range(len(jobs))],
        "image_size": image_size, "duplicate_fraction": float(duplicate_fraction),
        "junk_fraction": float(junk_fraction),
        "outputs": sorted(f"{s:05d}{suffix}" for s in range(len(jobs)) for suffix in _SUFFIXES[fmt]),
    }
    return write_manifest(out, meta)

