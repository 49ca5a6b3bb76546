"""Tux Paint stamps: the trusted pool (`tuxpaint`) and its held-out retrieval set (`tuxpaint-retrieval`).

A stamp is a `.txt` description with a `.png` or `.svg` image of the same name under
/usr/share/tuxpaint/stamps (Debian package tuxpaint-stamps-default). Its caption is the
first line of the `.txt` (English; the translations follow as `xx.utf8=...` lines). The PNG
is used as it is; an SVG-only stamp is rendered to PNG with its longest side 256 pixels.

Split rule: stamps are split by caption group, so that stamps with the same caption (rocket1
to rocket5, crown1 and crown2, ...) never lie on both sides. The group key is the caption
lower-cased, whitespace collapsed and trailing punctuation stripped ("The letter p." -> "the
letter p"); a group belongs to `tuxpaint-retrieval` when the first byte of sha256 of its key is
below 26, about 10% of the groups; all the other stamps form the `tuxpaint` pool. The rule
depends on nothing but the stamp's own caption, so adding or removing stamps never moves
another stamp across the split. Retrieval needs one item per caption: `tuxpaint-retrieval`
keeps the first stamp of each held-out group (in path order) and counts the others, which
are in neither set, as `left_out_same_caption`.

Descriptions without an image (seasonal/christmas/gift*.txt) are skipped and counted as
`skipped_no_image`.
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
RETRIEVAL_BELOW = 26  # first sha256 byte of the caption group < 26 of 256: about 10% of the groups held out
SVG_SIDE = 256
COLUMNS = {"category": pa.string(), "path": pa.string(), "rendered_from_svg": pa.bool_()}
_TRANSLATION = re.compile(r"^[a-z]{2,3}(?:_[a-z]{2,4})?(?:@\w+)?\.utf-?8\s*=", re.I)
_TRAILING_PUNCTUATION = re.compile(r"[\s.,;:!?…]+$")


class Stamp(NamedTuple):
    """A stamp: its path without extension and its image path, both relative to `root`, and its caption."""

    root: str
    stem: str
    image: str
    caption: str


def _root() -> Path:
    return apt_path(TUXPAINT_STAMPS, PACKAGE)


def _descriptions(root: Path) -> list[Path]:
    return sorted(root.rglob("*.txt"), key=lambda p: p.relative_to(root).as_posix())


def _image_of(txt: Path) -> Path | None:
    return next((txt.with_suffix(s) for s in (".png", ".svg") if txt.with_suffix(s).is_file()), None)


def list_stamps() -> list[Stamp]:
    """Every stamp with a description and an image (PNG preferred to SVG), sorted by path."""
    root = _root()
    stamps = []
    for txt in _descriptions(root):
        image = _image_of(txt)
        if image is not None:
            stem = txt.relative_to(root).with_suffix("").as_posix()
            caption = caption_of(txt.read_text(encoding="utf-8", errors="replace"))
            stamps.append(Stamp(str(root), stem, image.relative_to(root).as_posix(), caption))
    return stamps


def without_image() -> list[str]:
    """The descriptions (relative paths) that have no image, so are no stamp."""
    root = _root()
    return [txt.relative_to(root).as_posix() for txt in _descriptions(root) if _image_of(txt) is None]


def caption_group(caption: str) -> str:
    """The split's group key: lower case, whitespace collapsed, trailing punctuation stripped."""
    return _TRAILING_PUNCTUATION.sub("", " ".join(caption.lower().split()))


def is_retrieval(caption: str) -> bool:
    """Whether the stamps with this caption (their caption group) are held out for retrieval."""
    return hashlib.sha256(caption_group(caption).encode()).digest()[0] < RETRIEVAL_BELOW


def caption_of(text: str) -> str:
    """The English description: the first non-empty line that is not a translation."""
    lines = (line.strip() for line in text.splitlines())
    return next((line for line in lines if line and not _TRANSLATION.match(line)), "")


def stamp_sample(stamp: Stamp) -> PoolSample | None:
    """The sample of a stamp, or None when its image cannot be rendered."""
    root = Path(stamp.root)
    caption = stamp.caption
    data = (root / stamp.image).read_bytes()
    from_svg = stamp.image.endswith(".svg")
    if from_svg:
        try:
            data = render_svg(data, SVG_SIDE)
        except Exception:  # a broken SVG is a skipped stamp, counted, not a failed build
            return None
    truth = {"category": stamp.stem.split("/")[0], "path": stamp.image, "rendered_from_svg": from_svg}
    return PoolSample(safe_key(stamp.stem), data, "png", caption, truth)


def retrieval_stamps(counts: dict | None = None) -> list[Stamp]:
    """The held-out stamps, one per caption group (the first in path order); the others count in `counts`."""
    chosen: dict[str, Stamp] = {}
    held = [s for s in list_stamps() if is_retrieval(s.caption)]
    for stamp in held:
        chosen.setdefault(caption_group(stamp.caption), stamp)
    if counts is not None:
        counts["left_out_same_caption"] = len(held) - len(chosen)
    return list(chosen.values())


def _samples(stamps: list[Stamp], limit: int | None, workers: int, counts: dict) -> Iterator[PoolSample]:
    counts["skipped_no_image"] = len(without_image())
    return present(ordered_map(stamp_sample, stamps[:limit], workers), counts, "skipped_unrenderable")


def pool_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """The samples of the training part (the stamps not held out), in path order."""
    stamps = [s for s in list_stamps() if not is_retrieval(s.caption)]
    return _samples(stamps, limit, workers, {} if counts is None else counts)


def eval_inputs() -> list[Path]:
    """The files the retrieval set is read from (the guard's cache key): every description, the held-out images."""
    root = _root()
    return _descriptions(root) + [root / s.image for s in list_stamps() if is_retrieval(s.caption)]


def eval_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """The samples of the held-out retrieval set, one per caption, in path order."""
    counts = {} if counts is None else counts
    return _samples(retrieval_stamps(counts), limit, workers, counts)


def _source() -> dict:
    return {"package": PACKAGE, "path": str(TUXPAINT_STAMPS),
            "split": "sha256(caption_group)[0] < 26 -> tuxpaint-retrieval (one stamp per caption)",
            "caption_group": "caption lower-cased, whitespace collapsed, trailing punctuation stripped"}


def build_tuxpaint(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """The trusted pool: stamps not held out, caption = first line of the description."""
    counts: dict[str, int] = {}
    samples = pool_samples(limit=limit, workers=workers, counts=counts)
    return write_guarded_pool(samples, out, name="tuxpaint", columns=COLUMNS, samples_per_shard=samples_per_shard,
                              manifest={"counts": counts, "source": _source()})


def build_tuxpaint_retrieval(out: Path, *, limit: int | None = None, workers: int = 1,
                             samples_per_shard: int = 1000) -> dict:
    """The held-out image-text retrieval set (about 10% of the caption groups, one stamp per caption)."""
    counts: dict[str, int] = {}
    samples = eval_samples(limit=limit, workers=workers, counts=counts)
    return write_pool(samples, out, name="tuxpaint-retrieval", kind="eval", columns=COLUMNS,
                      samples_per_shard=samples_per_shard,
                      manifest={"task": "retrieval", "counts": counts, "source": _source()})
