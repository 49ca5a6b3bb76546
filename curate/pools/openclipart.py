"""Open Clip Art Library: the `openclipart` pool, noisy on purpose.

Every PNG under /usr/share/openclipart/png (Debian package openclipart-png) is used as it is;
its caption is the title of the matching SVG (openclipart-svg), read from the SVG's RDF
metadata: the cc:Work's dc:title (not the dc:title of its publisher, creator or rights agents),
with dc:description and the dc:subject keywords kept as columns. The noise is the point and is
kept: duplicate files (symlinks, recorded in `duplicate_of`), empty and junk titles,
non-English titles. No evaluation set is drawn from it; the guard still runs, and refuses the
flags of `flags-eval` countries: items that say they are a flag (title, description, keywords
or path) and name such a country in their title or path (see `curate.pools.guard`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from curate.pools.guard import write_guarded_pool
from curate.pools.images import SvgRefused, inline_entities
from curate.pools.parallel import ordered_map
from curate.pools.sources import OPENCLIPART, apt_path
from curate.pools.writer import PoolSample, safe_key

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
CC = "{http://web.resource.org/cc/}"
DC = "{http://purl.org/dc/elements/1.1/}"
COLUMNS = {"title": pa.string(), "description": pa.string(), "keywords": pa.list_(pa.string()),
           "category": pa.string(), "path": pa.string(), "duplicate_of": pa.string(), "metadata_error": pa.bool_()}


def _text(value: str | None) -> str | None:
    return None if value is None else value.strip()


def svg_metadata(svg: bytes) -> dict | None:
    """{title, description, keywords} of the cc:Work in an SVG's RDF metadata; None if unparseable.

    Only the start of the file is parsed: it stops at the end of the rdf:RDF element. An SVG
    whose entities would expand too far (see `inline_entities`) is unparseable.
    """
    try:
        for _, element in ElementTree.iterparse(io.BytesIO(inline_entities(svg)), events=("end",)):
            if element.tag == f"{RDF}RDF":
                work = element.find(f"{CC}Work")
                if work is None:
                    break
                keywords = [_text(li.text) for li in work.findall(f"{DC}subject/{RDF}Bag/{RDF}li")]
                return {"title": _text(work.findtext(f"{DC}title")),
                        "description": _text(work.findtext(f"{DC}description")),
                        "keywords": [k for k in keywords if k]}
    except (ElementTree.ParseError, DefusedXmlException, SvgRefused):
        return None
    return {"title": None, "description": None, "keywords": []}


def list_pngs() -> list[str]:
    """The PNG paths relative to the png folder, sorted."""
    root = apt_path(OPENCLIPART / "png", "openclipart-png")
    apt_path(OPENCLIPART / "svg", "openclipart-svg")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def _duplicate_of(png: Path, root: Path) -> str | None:
    if not png.is_symlink():
        return None
    target = png.resolve()
    return target.relative_to(root.resolve()).as_posix() if target.is_relative_to(root.resolve()) else str(target)


def clipart_sample(relative: str) -> PoolSample:
    """The sample of one PNG, captioned with its SVG's title ("" when it has none)."""
    png = OPENCLIPART / "png" / relative
    svg = (OPENCLIPART / "svg" / relative).with_suffix(".svg")
    meta = svg_metadata(svg.read_bytes()) if svg.is_file() else None
    truth = {**(meta or {"title": None, "description": None, "keywords": []}),
             "category": relative.split("/")[0], "path": relative,
             "duplicate_of": _duplicate_of(png, OPENCLIPART / "png"), "metadata_error": meta is None}
    return PoolSample(safe_key(relative), png.read_bytes(), "png", truth["title"] or "", truth)


def pool_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """Every PNG with its metadata, in path order."""
    return ordered_map(clipart_sample, list_pngs()[:limit], workers, chunksize=64)


def build_openclipart(out: Path, *, limit: int | None = None, workers: int = 1,
                      samples_per_shard: int = 1000) -> dict:
    """The noisy pool: caption = SVG title; description, keywords and duplicate links as columns."""
    samples = pool_samples(limit=limit, workers=workers)
    return write_guarded_pool(samples, out, name="openclipart", columns=COLUMNS, samples_per_shard=samples_per_shard,
                              manifest={"source": {"package": "openclipart-png, openclipart-svg",
                                                   "path": str(OPENCLIPART)}})
