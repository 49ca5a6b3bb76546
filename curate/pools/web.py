"""The `web` pool: the demo's default pool, a mix of real sources ingested by URL.

It holds the pool parts of openclipart, emoji, openmoji, flags and tuxpaint (never their
held-out evaluation items; the guard refuses any that would slip in). Images are plain files
and URL lists point at them, as a web crawl would:

    OUT/files/<source>/<key>.<ext>   the images, served by any static file server at base_url
    OUT/urls/{b:05d}.parquet         url, caption, key, source, source_key, original_caption, path,
                                     category, trusted, width, height, sha256; b in 0..URL_FILES-1
    OUT/_pool.json                   base_url, files root, counts per source (written last)

url = f"{base_url}/{source}/{key}.{ext}". `key` is "<source>_<source_key>", unique across sources
(emoji and openmoji share code-point keys), where `source_key` is the item's key in the source's
own pool (e.g. `curate pools build emoji`). `caption` is the source's caption; `original_caption`
keeps it as the source gave it for steps that rewrite `caption`. `trusted` marks the Tux Paint
captions (the DFN's training data).

A row's URL list file is a fixed hash bucket of its key: `int(sha256(key)[:8], 16) % URL_FILES`
(16 files, 00000..00015; an empty bucket writes no file), rows within a file ordered by
sha256 of their key. So an item lands in the same file whatever else is built (`limit`, other
sources, package updates), and the uid the URL ingest stage derives from the file name and the
key is stable; the sources are mixed across files. There is no `samples_per_shard` for `web`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from curate.pools import emoji, flags, openclipart, tuxpaint
from curate.pools.guard import EvalGuard, eval_guard
from curate.pools.images import image_size
from curate.pools.writer import (PoolSample, begin_build, image_sha256, refuse, remove_stale,
                                 write_manifest)
from curate.run import parquet_bytes, write_atomic

DEFAULT_BASE_URL = "http://127.0.0.1:8765"
SOURCES: dict[str, Callable[..., Iterator[PoolSample]]] = {
    "tuxpaint": tuxpaint.pool_samples,
    "openclipart": openclipart.pool_samples,
    "emoji": emoji.emoji_samples,
    "openmoji": emoji.openmoji_samples,
    "flags": flags.pool_samples,
}
TRUSTED = {"tuxpaint"}
URL_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("url", "caption", "key", "source", "source_key", "original_caption", "path",
                                      "category")]
    + [("trusted", pa.bool_()), ("width", pa.int32()), ("height", pa.int32()), ("sha256", pa.string())])
URL_FILES = 16  # fixed, so an item's file never depends on how many items there are
_URL_SHARD = re.compile(r"^\d{5}\.parquet$")
_ANY = re.compile(r".")


def _row(source: str, key: str, sample: PoolSample, base_url: str) -> dict:
    width, height = image_size(sample.image)
    category = sample.truth.get("category") or sample.truth.get("group")
    return {"url": f"{base_url}/{source}/{key}.{sample.ext}", "caption": sample.caption, "key": key,
            "source": source, "source_key": sample.key, "original_caption": sample.caption,
            "path": sample.truth.get("path"), "category": category, "trusted": source in TRUSTED,
            "width": width, "height": height, "sha256": image_sha256(sample)}


def _write_source(out: Path, source: str, samples: Iterator[PoolSample], guard: EvalGuard, base_url: str,
                  reasons: dict[str, int]) -> tuple[list[dict], list[str]]:
    """Write one source's files; return its URL rows and its refused keys (their reasons counted in `reasons`)."""
    folder, refused, rows, names = out / "files" / source, [], [], set()
    folder.mkdir(parents=True, exist_ok=True)
    for sample in refuse(samples, guard.rule(source), refused, reasons):
        key = f"{source}_{sample.key}"
        name = f"{key}.{sample.ext}"
        if name in names:
            raise ValueError(f"{source}: sample key {sample.key!r} appears twice")
        names.add(name)
        write_atomic(folder / name, sample.image)
        rows.append(_row(source, key, sample, base_url))
    remove_stale(folder, names, _ANY)
    return rows, refused


def url_file(key: str) -> str:
    """The URL list file (without ".parquet") of the row with this key: a fixed hash bucket of the key."""
    return f"{int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % URL_FILES:05d}"


def _write_urls(out: Path, rows: list[dict]) -> list[str]:
    """Write each row to its key's bucket file, ordered by sha256 of the key; return the files written."""
    buckets: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: hashlib.sha256(r["key"].encode()).hexdigest()):
        buckets.setdefault(url_file(row["key"]), []).append(row)
    (out / "urls").mkdir(exist_ok=True)
    for shard, chosen in buckets.items():
        table = pa.Table.from_pylist(chosen, schema=URL_SCHEMA)
        write_atomic(out / "urls" / f"{shard}.parquet", parquet_bytes(table))
    shards = sorted(buckets)
    remove_stale(out / "urls", {f"{s}.parquet" for s in shards}, _URL_SHARD)
    return shards


def _prepare(limit: int | None, workers: int) -> dict[str, tuple[Iterator[PoolSample], dict]]:
    """Each source's samples and counts, located (listings read) before anything is written or hashed."""
    prepared = {}
    for source, samples in SOURCES.items():
        counts: dict[str, int] = {}
        prepared[source] = (samples(limit=limit, workers=workers, counts=counts), counts)
    return prepared


def build_web(out: Path, *, limit: int | None = None, workers: int = 1, base_url: str = DEFAULT_BASE_URL) -> dict:
    """The mixed URL pool of every source's pool part; `limit` caps the items per source."""
    prepared = _prepare(limit, workers)
    out, base_url, guard = begin_build(Path(out)), base_url.rstrip("/"), eval_guard()
    rows, counts, refused_keys, reasons = [], {}, {}, {}
    for source, (samples, source_counts) in prepared.items():
        written, refused = _write_source(out, source, samples, guard, base_url, reasons)
        rows += written
        counts[source] = {**source_counts, "written": len(written), "refused_eval_items": len(refused)}
        refused_keys[source] = refused
    shards = _write_urls(out, rows)
    return write_manifest(out, {
        "name": "web", "kind": "pool", "format": "urls", "base_url": base_url, "files": "files", "urls": "urls",
        "n": len(rows), "shards": shards, "url_files": URL_FILES, "counts": counts,
        "refused_eval_items": sum(len(k) for k in refused_keys.values()), "refused_keys": refused_keys,
        "refused_by": dict(sorted(reasons.items())), "eval_guard": guard.summary(), "outputs": ["files", "urls"],
    })
