"""Tux Paint stamps: the trusted pool (`tuxpaint`) and its held-out retrieval set (`tuxpaint-retrieval`).

A stamp is a `.txt` description with a `.png` or `.svg` image of the same name under
/usr/share/tuxpaint/stamps (Debian package tuxpaint-stamps-default). Its caption is the
first line of the `.txt` (English; the translations follow as `xx.utf8=...` lines). The PNG
is used as it is; an SVG-only stamp is rendered to PNG with its longest side 256 pixels.

Split rule: a stamp belongs to `tuxpaint-retrieval` when the first byte of sha256 of its path
relative to the stamps folder without extension (e.g. "animals/birds/crow") is below 26, about
10% of the stamps; all the others form the `tuxpaint` pool. The rule depends on nothing but the
stamp's own path, so adding or removing stamps never moves another stamp across the split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from curate.pools.guard import write_guarded_pool
from curate.pools.images import render_svg
from curate.pools.parallel import ordered_map
from curate.pools.sources import TUXPAINT_STAMPS, apt_path
from curate.pools.writer import PoolSample, present, safe_key, write_pool

PACKAGE = "tuxpaint-stamps-default"
RETRIEVAL_BELOW = 26  # first sha256 byte < 26 of 256: about 10% held out
SVG_SIDE = 256
COLUMNS = {"category": pa.string(), "path": pa.string(), "rendered_from_svg": pa.bool_()}
_TRANSLATION = re.compile(r"^[a-z]{2,3}(?:_[a-z]{2,4})?(?:@\w+)?\.utf-?8\s*=", re.I)


class Stamp(NamedTuple):
    """A stamp: its path without extension and its image path, both relative to `root`."""

    root: str
    stem: str
    image: str


def _root() -> Path:
    return apt_path(TUXPAINT_STAMPS, PACKAGE)


def list_stamps() -> list[Stamp]:
    """Every stamp with a description and an image (PNG preferred to SVG), sorted by path."""
    root = _root()
    stamps = []
    for txt in sorted(root.rglob("*.txt"), key=lambda p: p.relative_to(root).as_posix()):
        image = next((txt.with_suffix(s) for s in (".png", ".svg") if txt.with_suffix(s).is_file()), None)
        if image is not None:
            stem = txt.relative_to(root).with_suffix("").as_posix()
            stamps.append(Stamp(str(root), stem, image.relative_to(root).as_posix()))
    return stamps


def is_retrieval(stem: str) -> bool:
    """Whether the stamp with this path (relative, no extension) is held out for retrieval."""
    return hashlib.sha256(stem.encode()).digest()[0] < RETRIEVAL_BELOW


def caption_of(text: str) -> str:
    """The English description: the first non-empty line that is not a translation."""
    lines = (line.strip() for line in text.splitlines())
    return next((line for line in lines if line and not _TRANSLATION.match(line)), "")


def stamp_sample(stamp: Stamp) -> PoolSample | None:
    """The sample of a stamp, or None when its image cannot be rendered."""
    root = Path(stamp.root)
    caption = caption_of((root / f"{stamp.stem}.txt").read_text(encoding="utf-8", errors="replace"))
    data = (root / stamp.image).read_bytes()
    from_svg = stamp.image.endswith(".svg")
    if from_svg:
        try:
            data = render_svg(data, SVG_SIDE)
        except Exception:  # a broken SVG is a skipped stamp, counted, not a failed build
            return None
    truth = {"category": stamp.stem.split("/")[0], "path": stamp.image, "rendered_from_svg": from_svg}
    return PoolSample(safe_key(stamp.stem), data, "png", caption, truth)


def _samples(held_out: bool, limit: int | None, workers: int, counts: dict) -> Iterator[PoolSample]:
    stamps = [s for s in list_stamps() if is_retrieval(s.stem) == held_out][:limit]
    return present(ordered_map(stamp_sample, stamps, workers), counts, "skipped_unrenderable")


def pool_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """The samples of the training part (the stamps not held out), in path order."""
    return _samples(False, limit, workers, {} if counts is None else counts)


def eval_inputs() -> list[Path]:
    """The files the retrieval set is read from (for the guard's cache key)."""
    root = _root()
    return [root / p for s in list_stamps() if is_retrieval(s.stem) for p in (f"{s.stem}.txt", s.image)]


def eval_samples(*, limit: int | None = None, workers: int = 1) -> Iterator[PoolSample]:
    """The samples of the held-out retrieval set, in path order."""
    return _samples(True, limit, workers, {})


def _source() -> dict:
    return {"package": PACKAGE, "path": str(TUXPAINT_STAMPS), "split": "sha256(stem)[0] < 26 -> tuxpaint-retrieval"}


def build_tuxpaint(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """The trusted pool: stamps not held out, caption = first line of the description."""
    counts: dict[str, int] = {}
    samples = pool_samples(limit=limit, workers=workers, counts=counts)
    return write_guarded_pool(samples, out, name="tuxpaint", columns=COLUMNS, samples_per_shard=samples_per_shard,
                              manifest={"counts": counts, "source": _source()})


def build_tuxpaint_retrieval(out: Path, *, limit: int | None = None, workers: int = 1,
                             samples_per_shard: int = 1000) -> dict:
    """The held-out image-text retrieval set (about 10% of the stamps)."""
    counts: dict[str, int] = {}
    samples = _samples(True, limit, workers, counts)
    return write_pool(samples, out, name="tuxpaint-retrieval", kind="eval", columns=COLUMNS,
                      samples_per_shard=samples_per_shard,
                      manifest={"task": "retrieval", "counts": counts, "source": _source()})
