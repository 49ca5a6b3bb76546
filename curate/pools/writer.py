"""The common pool writer: samples to WebDataset tars + Parquet ground truth + `_pool.json`.

Layout of a pool (or evaluation set) folder OUT, with shards numbered 00000, 00001, ...:

    OUT/{s:05d}.tar       <key>.<png|jpg>, <key>.txt (caption), <key>.json (ground truth + key + caption)
    OUT/{s:05d}.parquet   one row per sample: key, caption, width, height, sha256, ground-truth columns
    OUT/_pool.json        name, kind, n, shards, samples_per_shard, counts, outputs, ... (written last)

An evaluation set (kind "eval") takes clip_benchmark's WebDataset layout instead, which
`clip_benchmark eval --dataset wds/NAME --dataset_root OUT` reads as it is:

    OUT/test/{0..N-1}.tar   as above, and the label as <key>.cls (classification)
    OUT/test/{i}.parquet    the ground truth, as above
    OUT/test/nshards.txt    N
    OUT/dataset_type.txt    classification or retrieval
    OUT/classnames.txt, OUT/zeroshot_classification_templates.txt
                            a classification set's class names and prompts, one a line

Every file is written atomically; `_pool.json` is removed first and written last, so its
presence marks a complete build. Its `outputs` names what the build wrote directly in OUT
(files and folders), so a rebuild removes exactly that and leaves anything else in OUT.
Output is a pure function of the samples given, in order.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Set
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from curate.io.tars import tar_bytes
from curate.pools.images import image_size
from curate.run import parquet_bytes, write_atomic

IMAGE_EXTS = ("png", "jpg")
BASE_COLUMNS = {"key": pa.string(), "caption": pa.string(), "width": pa.int32(), "height": pa.int32(),
                "sha256": pa.string()}
MANIFEST = "_pool.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SHARD_FILE = re.compile(r"^\d{5}\.(tar|parquet)$")
_EVAL_SHARD_FILE = re.compile(r"^\d+\.(tar|parquet)$")
EVAL_SPLIT = "test"
NSHARDS_FILE = "nshards.txt"
DATASET_TYPE_FILE = "dataset_type.txt"
_OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")  # one path component, not "." or ".."
CLASSNAMES_FILE = "classnames.txt"
TEMPLATES_FILE = "zeroshot_classification_templates.txt"
_MAX_KEY = 80  # "<key>.json" must fit USTAR's 100-byte member names


class PoolSample(NamedTuple):
    """One item of a pool: encoded image, caption and ground-truth columns."""

    key: str
    image: bytes
    ext: str
    caption: str
    truth: dict


Exclude = Set[str] | Callable[[PoolSample], str | None]  # image sha256s, or sample -> why it is refused (None: kept)


def safe_key(path: str) -> str:
    """A WebDataset key for a relative path: no dots or slashes ("animals/cat.png" -> "animals_cat").

    A path whose stem has other characters than letters, digits, "_", "-" and "/", or that is
    over-long, gets a suffix of its hash, so that "viewmag+.png" and "viewmag.png" stay distinct.
    """
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    key = _UNSAFE.sub("_", stem.replace("/", "_")).strip("_") or "item"
    if _UNSAFE.search(stem.replace("/", "_")) or len(key) > _MAX_KEY - 9:
        key = f"{key[:_MAX_KEY - 9]}_{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return key


def classification_files(classnames: Iterable[str], templates: Iterable[str]) -> dict[str, str]:
    """The class-name and prompt-template files of a zero-shot classification set, for `write_pool`."""
    return {CLASSNAMES_FILE: "".join(f"{name}\n" for name in classnames),
            TEMPLATES_FILE: "".join(f"{template}\n" for template in templates)}


def image_sha256(sample: PoolSample) -> str:
    """Hex sha256 of a sample's encoded image bytes."""
    return hashlib.sha256(sample.image).hexdigest()


def _check(sample: PoolSample, seen: set[str], columns: dict[str, pa.DataType]) -> None:
    if not sample.key or _UNSAFE.search(sample.key) or len(sample.key) > _MAX_KEY:
        raise ValueError(f"sample key {sample.key!r} is not a safe WebDataset key (letters, digits, _ and -)")
    if sample.key in seen:
        raise ValueError(f"sample key {sample.key!r} appears twice")
    if sample.ext not in IMAGE_EXTS:
        raise ValueError(f"sample {sample.key!r}: image extension must be one of {IMAGE_EXTS}, got {sample.ext!r}")
    unknown = set(sample.truth) - set(columns)
    if unknown:
        raise ValueError(f"sample {sample.key!r} has ground truth {sorted(unknown)} the pool does not declare")
    seen.add(sample.key)


def _tar(samples: list[PoolSample], labels: bool = False) -> bytes:
    """The samples' members; with `labels`, an evaluation sample's label as `cls` too."""
    return tar_bytes([{"__key__": s.key, s.ext: s.image, "txt": s.caption,
                       **({"cls": str(s.truth["label"])} if labels and s.truth.get("label") is not None else {}),
                       "json": json.dumps({**s.truth, "key": s.key, "caption": s.caption}, sort_keys=True)}
                      for s in samples])


def _table(samples: list[PoolSample], columns: dict[str, pa.DataType]) -> pa.Table:
    sizes = [image_size(s.image) for s in samples]
    data = {"key": [s.key for s in samples], "caption": [s.caption for s in samples],
            "width": [w for w, _ in sizes], "height": [h for _, h in sizes],
            "sha256": [image_sha256(s) for s in samples]}
    data.update({name: [s.truth.get(name) for s in samples] for name in columns})
    schema = pa.schema([*BASE_COLUMNS.items(), *columns.items()])
    return pa.table(data, schema=schema)


def _batches(samples: Iterable[PoolSample], size: int) -> Iterator[list[PoolSample]]:
    iterator = iter(samples)
    while batch := list(islice(iterator, size)):
        yield batch


def remove_stale(folder: Path, keep: Set[str], pattern: re.Pattern = _SHARD_FILE) -> None:
    """Delete files in `folder` named like `pattern` that are not in `keep` (left by an earlier build)."""
    for path in folder.iterdir():
        if pattern.match(path.name) and path.name not in keep and path.is_file():
            path.unlink()


def begin_build(out: Path) -> Path:
    """Create `out` and remove its manifest, so an interrupted rebuild is never taken as complete."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    return out


def previous_outputs(manifest: dict) -> list[str]:
    """What the build that wrote `manifest` wrote directly in its folder (names, not paths), manifest excluded.

    Its `outputs`, or for a manifest written before `outputs` was recorded, what its `shards`,
    `format`, `files` and `urls` imply. Names that are not one plain path component are dropped.
    """
    names = manifest.get("outputs")
    if not isinstance(names, list):
        shards = [s for s in manifest.get("shards") or [] if isinstance(s, str)]
        if manifest.get("format") == "urls":
            names = [manifest.get("files"), manifest.get("urls")]
        else:
            names = [f"{s}.{ext}" for s in shards for ext in ("tar", "parquet")]
            names += shards if manifest.get("format") == "folder" else []
    return sorted({n for n in names if isinstance(n, str) and _OUTPUT_NAME.match(n) and n != MANIFEST})


def remove_previous(out: Path) -> list[str]:
    """Remove what the build recorded in `out/_pool.json` wrote, then the manifest; return the names removed.

    Nothing else in `out` is touched; without a readable manifest only the manifest goes. A
    listed folder is removed whole; a listed symbolic link is removed, not what it points to.
    """
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    removed = []
    for name in previous_outputs(manifest) if isinstance(manifest, dict) else []:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    (out / MANIFEST).unlink(missing_ok=True)
    return removed


def write_manifest(out: Path, manifest: dict) -> dict:
    """Write `_pool.json` (sorted keys, so rebuilds give identical bytes) and return it."""
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def write_pool(samples: Iterable[PoolSample], out: Path, *, name: str, columns: dict[str, pa.DataType],
               kind: str = "pool", samples_per_shard: int = 1000, exclude: Exclude = frozenset(),
               manifest: dict | None = None, files: dict[str, str] | None = None) -> dict:
    """Write samples as shards of `samples_per_shard` and return the `_pool.json` dict.

    `columns` declares the ground-truth columns (name -> Arrow type) of the Parquet files.
    Samples that `exclude` refuses (evaluation items: their image sha256 is in the set, or the
    callable gives a reason) are left out, counted in `refused_eval_items`, their keys listed
    in `refused_keys` and their reasons counted in `refused_by`. `manifest` adds entries to
    `_pool.json`; it is read after the samples are consumed, so `counts` that a sample
    generator updates are up to date. `files` are text files written beside the shards (name ->
    content; an evaluation set's class names and prompt templates).
    """
    if kind not in ("pool", "eval") or (kind == "eval" and exclude):
        raise ValueError(f"kind must be pool or eval (which refuses nothing), got {kind!r}")
    if not isinstance(samples_per_shard, int) or samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be an integer >= 1, got {samples_per_shard!r}")
    out = begin_build(out)
    seen: set[str] = set()
    refused: list[str] = []
    reasons: dict[str, int] = {}
    shards: list[str] = []
    evaluation = kind == "eval"
    for batch in _batches(refuse(samples, exclude, refused, reasons), samples_per_shard):
        for sample in batch:
            _check(sample, seen, columns)
        shard = f"{EVAL_SPLIT}/{len(shards)}" if evaluation else f"{len(shards):05d}"
        write_atomic(out / f"{shard}.tar", _tar(batch, labels=evaluation))
        write_atomic(out / f"{shard}.parquet", parquet_bytes(_table(batch, columns)))
        shards.append(shard)
    files = dict(files or {})
    if evaluation:
        write_atomic(out / EVAL_SPLIT / NSHARDS_FILE, f"{len(shards)}\n".encode())
        remove_stale(out / EVAL_SPLIT, {f"{s.split('/')[1]}.{ext}" for s in shards for ext in ("tar", "parquet")},
                     _EVAL_SHARD_FILE)
        files[DATASET_TYPE_FILE] = f"{(manifest or {}).get('task', 'classification')}\n"
    for file_name, text in files.items():
        write_atomic(out / file_name, text.encode())
    written = [EVAL_SPLIT] if evaluation else [f"{s}.{ext}" for s in shards for ext in ("tar", "parquet")]
    outputs = sorted(written + list(files))
    remove_stale(out, set(outputs))
    extra = dict(manifest or {})
    counts = {"written": len(seen), **extra.pop("counts", {})}
    if kind == "pool":
        counts["refused_eval_items"] = len(refused)
        extra.update(refused_eval_items=len(refused), refused_keys=refused, refused_by=dict(sorted(reasons.items())))
    return write_manifest(out, {**extra, "name": name, "kind": kind, "n": len(seen), "shards": shards,
                                "samples_per_shard": samples_per_shard, "counts": counts, "outputs": outputs})


def refuse(samples: Iterable[PoolSample], exclude: Exclude, refused: list[str],
           reasons: dict[str, int] | None = None) -> Iterator[PoolSample]:
    """The samples `exclude` does not refuse; the keys of the others go to `refused`, their reasons to `reasons`.

    `exclude` is a set of image sha256s (reason "eval_image") or a callable giving the reason
    to refuse a sample, or None to keep it (`EvalGuard.rule`).
    """
    reason = exclude if callable(exclude) else _hash_rule(exclude)
    for sample in samples:
        why = reason(sample)
        if why is None:
            yield sample
        else:
            refused.append(sample.key)
            if reasons is not None:
                reasons[why] = reasons.get(why, 0) + 1


def _hash_rule(hashes: Set[str]) -> Callable[[PoolSample], str | None]:
    def reason(sample: PoolSample) -> str | None:
        return "eval_image" if hashes and image_sha256(sample) in hashes else None
    return reason


def present(results: Iterable[PoolSample | None], counts: dict[str, int], reason: str) -> Iterator[PoolSample]:
    """The samples that were made; each None (an item that could not be made) counts in counts[reason]."""
    counts.setdefault(reason, 0)
    for result in results:
        if result is None:
            counts[reason] += 1
        else:
            yield result
