"""The `datacomp-like` pool: DataComp's pool layout, exactly, built here from the embedded pools.

    OUT/metadata/<32 hex>.parquet   uid, url, text, original_width, original_height,
                                    clip_b32_similarity_score, clip_l14_similarity_score,
                                    face_bboxes, sha256 (DataComp's names and types)
    OUT/metadata/<32 hex>.npz       b32_img, b32_txt (n x 512), l14_img, l14_txt (n x 768), float16,
                                    row-aligned with the Parquet file of the same stem
    OUT/target.npz                  b32_img, l14_img: target images for the image-based filter
    OUT/_pool.json                  written last

A base of real image-caption pairs (the `web` pool's sources, or `synthetic` shapes) is embedded
once with a local CLIP (the DFN, or any model named); the pool's N rows are resampled from the
base with jitter: each row's embeddings are its base pair's, mapped by fixed random isometries
into DataComp's 512 (B/32) and 768 (L/14) dimensions with independent noise, so the two models'
scores agree as two real CLIPs do, not exactly. A share of rows gets another base pair's caption
(web alt-text is often unrelated), image sizes are rescaled, a tenth of the rows carry a face
box, and rows resampled from one base image share its sha256 (one image at many URLs). Every
shard is a pure function of (seed, shard), so any number of workers writes the same files.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.pools.writer import begin_build, write_manifest
from curate.run import parquet_bytes, write_atomic

DIMENSIONS = {"b32": 512, "l14": 768}
SCHEMA = pa.schema([("uid", pa.string()), ("url", pa.string()), ("text", pa.string()),
                    ("original_width", pa.int64()), ("original_height", pa.int64()),
                    ("clip_b32_similarity_score", pa.float32()), ("clip_l14_similarity_score", pa.float32()),
                    ("face_bboxes", pa.list_(pa.list_(pa.float64()))), ("sha256", pa.string())])
MISMATCHED = 0.3  # share of rows whose caption belongs to another image
NOISE = {"b32": 0.35, "l14": 0.3}  # norm of the jitter added to a unit embedding, per model
FACES = 0.1
TARGET_EVERY = 10


@dataclass(frozen=True)
class Base:
    """The embedded base pairs: captions, sizes, image sha256s, unit image and text embeddings."""

    captions: list[str]
    sizes: np.ndarray  # (n, 2) width, height
    sha256: list[str]
    image: np.ndarray  # (n, d) float32
    text: np.ndarray


def base_pairs(base: str, limit: int | None, seed: int) -> list[tuple[bytes, str]]:
    """(image bytes, caption) of the base: the web pool's real sources (eval items refused), or
    generated shapes."""
    if base == "synthetic":
        from curate.pools.synthetic import make_sample

        return [(s.jpeg, s.caption) for s in (make_sample(seed, i, duplicate_fraction=0.0)
                                               for i in range(limit or 2000))]
    if base != "web":
        raise ValueError(f"base must be web or synthetic, not {base!r}")
    from curate.pools.guard import eval_guard
    from curate.pools.web import SOURCES
    from curate.pools.writer import refuse

    guard, pairs = eval_guard(), []
    for source, samples in SOURCES.items():
        for sample in refuse(samples(limit=limit, workers=1, counts={}), guard.rule(source), [], {}):
            pairs.append((sample.image, sample.caption))
    return pairs


def embed_base(pairs: list[tuple[bytes, str]], model: str, weights: str | None, batch_size: int = 64) -> Base:
    """Embed every pair whose image decodes with a local CLIP (each image decoded once)."""
    import torch
    from PIL import Image

    from curate.models.clip import load_clip
    from curate.stages.score.model_batches import clip_pixels

    clip = load_clip(model, weights, "auto")
    kept, images, texts = [], [], []
    for start in range(0, len(pairs), batch_size):
        with warnings.catch_warnings():  # a few clip-art PNGs are huge, and known: no advice needed
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            decoded = [(clip_pixels(clip, data), data, caption) for data, caption in pairs[start: start + batch_size]]
        chunk = [item for item in decoded if item[0] is not None]
        if not chunk:
            continue
        image, text = clip.encode(torch.stack([p for p, _, _ in chunk]), clip.tokenizer([c for _, _, c in chunk]))
        images.append(image.cpu().numpy())
        texts.append(text.cpu().numpy())
        kept += [(data, caption) for _, data, caption in chunk]
    if not kept:
        raise ValueError("no base image decodes: nothing to resample the pool from")
    sizes = np.array([Image.open(io.BytesIO(data)).size for data, _ in kept], np.int64).reshape(-1, 2)
    return Base([c for _, c in kept], sizes, [hashlib.sha256(d).hexdigest() for d, _ in kept],
                np.concatenate(images), np.concatenate(texts))


def isometry(source: int, target: int, seed: int) -> np.ndarray:
    """A fixed (source x target) map: with orthonormal rows when target >= source (cosines kept
    exactly), else a random orthogonal projection (cosines kept approximately)."""
    rng = np.random.default_rng([seed, source, target])
    q, _ = np.linalg.qr(rng.standard_normal((max(target, source), source)))
    return q[:target].T.astype(np.float32) if target >= source else q[:source, :target].astype(np.float32)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _jittered(vectors: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    noise = rng.standard_normal(vectors.shape, dtype=np.float32) * (scale / np.sqrt(vectors.shape[1]))
    return _unit(vectors + noise)


_BASE: Base | None = None
_LAYOUT: Layout | None = None


@dataclass(frozen=True)
class Layout:
    """What a build chooses beyond the base: the embeddings' widths per model, and the share of
    rows whose image is their base pair's own (one image at many URLs: the same sha256)."""

    widths: tuple[tuple[str, int], ...] = tuple(DIMENSIONS.items())
    repeated_images: float = 1.0


def _set_base(base: Base, layout: Layout) -> None:
    global _BASE, _LAYOUT
    _BASE, _LAYOUT = base, layout


def shard_rows(base: Base, seed: int, shard: int, rows: int,
               layout: Layout = Layout()) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One metadata file and its embeddings: a pure function of (base, seed, shard, layout)."""
    rng = np.random.default_rng([seed, shard])
    picked = rng.integers(0, len(base.captions), rows)
    caption_of = np.where(rng.random(rows) < MISMATCHED, rng.integers(0, len(base.captions), rows), picked)
    arrays, scores = {}, {}
    for model, width in layout.widths:
        image = _jittered(base.image[picked] @ isometry(base.image.shape[1], width, seed), rng, NOISE[model])
        text = _jittered(base.text[caption_of] @ isometry(base.text.shape[1], width, seed), rng, NOISE[model])
        arrays[f"{model}_img"], arrays[f"{model}_txt"] = image.astype("<f2"), text.astype("<f2")
        scores[model] = np.einsum("ij,ij->i", image, text).astype(np.float32)
    scale = np.exp(rng.normal(0.6, 0.7, rows))
    sizes = np.maximum(1, np.round(base.sizes[picked] * scale[:, None]).astype(np.int64))
    hexes = rng.bytes(16 * rows).hex()
    uids = [hexes[32 * i: 32 * i + 32] for i in range(rows)]
    faces = [[[float(v) for v in np.sort(rng.random(4))]] if f else [] for f in rng.random(rows) < FACES]
    own = rng.random(rows) >= layout.repeated_images  # drawn last: a layout of 1.0 changes no other value
    sha256 = [hashlib.sha256(uid.encode()).hexdigest() if mine else base.sha256[i]
              for uid, i, mine in zip(uids, picked, own)]
    table = pa.table({
        "uid": uids, "url": [f"https://datacomp-like.invalid/{shard}/{i}.jpg" for i in range(rows)],
        "text": [base.captions[i] for i in caption_of], "original_width": sizes[:, 0],
        "original_height": sizes[:, 1], "clip_b32_similarity_score": scores["b32"],
        "clip_l14_similarity_score": scores["l14"], "face_bboxes": faces,
        "sha256": sha256}, schema=SCHEMA)
    return table, arrays


def write_target(path: Path, base: Base, seed: int, layout: Layout = Layout()) -> None:
    """The image-based filter's target (DataComp's is ImageNet-1k train): every tenth base image,
    jittered, in both models' spaces (keys b32_img, l14_img)."""
    rng = np.random.default_rng([seed, 1 << 40])  # no shard has this number
    chosen = base.image[::TARGET_EVERY]
    arrays = {f"{model}_img": _jittered(chosen @ isometry(chosen.shape[1], width, seed), rng, NOISE[model]).astype("<f2")
              for model, width in layout.widths}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def shard_stem(seed: int, shard: int) -> str:
    """A metadata file's stem: 32 hex digits, as DataComp names its files."""
    return hashlib.sha256(f"datacomp-like/{seed}/{shard}".encode()).hexdigest()[:32]


def _write_shard(folder: str, seed: int, shard: int, rows: int) -> int:
    table, arrays = shard_rows(_BASE, seed, shard, rows, _LAYOUT)
    stem = Path(folder) / shard_stem(seed, shard)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(stem.with_suffix(".npz"), buffer.getvalue())
    write_atomic(stem.with_suffix(".parquet"), parquet_bytes(table))
    return rows


def _write_shards(folder: Path, base: Base, layout: Layout, seed: int, counts: list[int], workers: int,
                  progress: Callable[[int], None]) -> None:
    jobs = [(str(folder), seed, shard, rows) for shard, rows in enumerate(counts)]
    if workers == 1:
        _set_base(base, layout)
        for job in jobs:
            progress(_write_shard(*job))
        return
    ctx = multiprocessing.get_context("spawn")  # the caller may hold threads a fork would copy mid-use
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_set_base,
                             initargs=(base, layout)) as pool:
        for rows in pool.map(_write_shard, *zip(*jobs)):
            progress(rows)


def build_datacomp_like(out: Path, n: int, *, base: str = "web", limit: int | None = None,
                        model: str = "curate-tiny-vit", weights: str | None = "data/dfn",
                        samples_per_shard: int = 10_000, seed: int = 0, workers: int = 1,
                        dimensions: int | None = None, repeated_images: float = 1.0,
                        progress: Callable[[int], None] | None = None) -> dict:
    """DataComp's pool layout with `n` rows resampled from embedded real pairs (see the module);
    `weights` None or "none": an untrained model. dimensions: one width for both models'
    embeddings instead of DataComp's 512 and 768 (a large pool that fits a disk);
    repeated_images: the share of rows that share their base image's sha256 (the others get
    one of their own, so exact deduplication leaves them)."""
    if weights is not None and weights.lower() == "none":
        weights = None
    if n < 1 or samples_per_shard < 1 or (dimensions is not None and dimensions < 1):
        raise ValueError("n, samples_per_shard and dimensions must be at least 1")
    if not 0 <= repeated_images <= 1:
        raise ValueError("repeated_images is a share, from 0 to 1")
    layout = Layout(tuple((m, dimensions or w) for m, w in DIMENSIONS.items()), repeated_images)
    if weights is not None and not Path(weights).exists():
        raise ValueError(f"no CLIP weights at {weights}: train the DFN first (`curate train-dfn --out data/dfn`), "
                         f"or name a model's weights with --weights (none: an untrained {model})")
    embedded = embed_base(base_pairs(base, limit, seed), model, weights)
    out = begin_build(Path(out))
    folder = out / "metadata"
    folder.mkdir(parents=True, exist_ok=True)
    counts = [min(samples_per_shard, n - start) for start in range(0, n, samples_per_shard)]
    _write_shards(folder, embedded, layout, seed, counts, workers, progress or (lambda _: None))
    write_target(out / "target.npz", embedded, seed, layout)
    stems = [shard_stem(seed, shard) for shard in range(len(counts))]
    return write_manifest(out, {
        "name": "datacomp-like", "kind": "pool", "format": "datacomp", "n": n, "base_pairs": len(embedded.captions),
        "embedded_with": {"model": model, "weights": weights}, "shards": stems,
        "dimensions": dict(layout.widths), "repeated_images": repeated_images,
        "target": "target.npz", "outputs": ["metadata", "target.npz"]})
