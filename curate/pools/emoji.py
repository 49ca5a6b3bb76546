"""Emoji: the `emoji` pool (Google's 64px PNGs) and the `openmoji` pool (OpenMoji colour SVGs).

Both are read from npm tarballs in the vendor folder ($CURATE_VENDOR_DIR, default data/vendor):
- emoji-datasource-google: the entries of package/emoji.json with has_img_google, image
  package/img/google/64/<image> used as it is; caption = the entry's name in lower case
  ("grinning face"); skin-tone variations are not included.
- openmoji: the rows of package/data/openmoji.csv whose package/color/svg/<hexcode>.svg exists,
  rendered to 128x128 PNG; caption = the row's annotation.
No evaluation set is drawn from either; the guard still runs, and refuses the flag emoji of
the `flags-eval` countries (by the regional-indicator code points in `unified` / `hexcode`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from curate.pools.guard import write_guarded_pool
from curate.pools.images import render_svg
from curate.pools.parallel import ordered_map
from curate.pools.sources import read_tar_members, vendor_tarball
from curate.pools.writer import PoolSample, present

EMOJI_PACKAGE, OPENMOJI_PACKAGE = "emoji-datasource-google", "openmoji"
EMOJI_IMAGES = "package/img/google/64/"
OPENMOJI_SVGS = "package/color/svg/"
OPENMOJI_SIDE = 128
EMOJI_COLUMNS = {"category": pa.string(), "subcategory": pa.string(), "short_name": pa.string(),
                 "unified": pa.string(), "path": pa.string()}
OPENMOJI_COLUMNS = {"group": pa.string(), "subgroups": pa.string(), "tags": pa.list_(pa.string()),
                    "hexcode": pa.string(), "path": pa.string()}


def _key(name: str) -> str:
    return name.rsplit(".", 1)[0].lower()


def _emoji_sample(entry: dict, image: bytes) -> PoolSample:
    truth = {"category": entry.get("category"), "subcategory": entry.get("subcategory"),
             "short_name": entry.get("short_name"), "unified": entry.get("unified"),
             "path": EMOJI_IMAGES.removeprefix("package/") + entry["image"]}
    return PoolSample(_key(entry["image"]), image, "png", (entry.get("name") or "").lower(), truth)


def emoji_samples(*, limit: int | None = None, workers: int = 1, counts: dict | None = None) -> Iterator[PoolSample]:
    """Google emoji with an image, sorted by image name; entries whose image is absent are counted."""
    counts = {} if counts is None else counts
    members = read_tar_members(vendor_tarball(EMOJI_PACKAGE),
                               lambda n: n == "package/emoji.json" or n.startswith(EMOJI_IMAGES))
    entries = sorted((e for e in json.loads(members["package/emoji.json"]) if e.get("has_img_google")),
                     key=lambda e: e["image"])[:limit]
    found = [e for e in entries if EMOJI_IMAGES + e["image"] in members]
    counts["skipped_missing_image"] = len(entries) - len(found)
    return (_emoji_sample(e, members[EMOJI_IMAGES + e["image"]]) for e in found)


def _render(item: tuple[str, bytes, str, dict]) -> PoolSample | None:
    key, svg, caption, truth = item
    try:
        return PoolSample(key, render_svg(svg, OPENMOJI_SIDE), "png", caption, truth)
    except Exception:  # a broken SVG is a skipped item, counted, not a failed build
        return None


def _openmoji_item(row: dict, svg: bytes) -> tuple[str, bytes, str, dict]:
    tags = [t.strip() for t in row.get("tags", "").split(",") if t.strip()]
    truth = {"group": row["group"], "subgroups": row["subgroups"], "tags": tags, "hexcode": row["hexcode"],
             "path": f"{OPENMOJI_SVGS.removeprefix('package/')}{row['hexcode']}.svg"}
    return _key(row["hexcode"]), svg, row["annotation"], truth


def openmoji_samples(*, limit: int | None = None, workers: int = 1,
                     counts: dict | None = None) -> Iterator[PoolSample]:
    """OpenMoji rows with a colour SVG, sorted by hexcode, rendered to PNG; rows without one are counted."""
    counts = {} if counts is None else counts
    members = read_tar_members(vendor_tarball(OPENMOJI_PACKAGE),
                               lambda n: n == "package/data/openmoji.csv" or n.startswith(OPENMOJI_SVGS))
    rows = sorted(csv.DictReader(io.StringIO(members["package/data/openmoji.csv"].decode("utf-8"))),
                  key=lambda r: r["hexcode"])[:limit]
    svgs = [(row, members.get(f"{OPENMOJI_SVGS}{row['hexcode']}.svg")) for row in rows]
    items = [_openmoji_item(row, svg) for row, svg in svgs if svg is not None]
    counts["skipped_missing_svg"] = len(rows) - len(items)
    return present(ordered_map(_render, items, workers, chunksize=32), counts, "skipped_unrenderable")


def _source(package: str) -> dict:
    return {"package": package, "tarball": vendor_tarball(package).name}


def build_emoji(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """Google emoji 64px PNGs, caption = lower-case name."""
    counts: dict[str, int] = {}
    samples = emoji_samples(limit=limit, counts=counts)
    return write_guarded_pool(samples, out, name="emoji", columns=EMOJI_COLUMNS, samples_per_shard=samples_per_shard,
                              manifest={"counts": counts, "source": _source(EMOJI_PACKAGE)})


def build_openmoji(out: Path, *, limit: int | None = None, workers: int = 1, samples_per_shard: int = 1000) -> dict:
    """OpenMoji colour SVGs rendered at 128px, caption = annotation."""
    counts: dict[str, int] = {}
    samples = openmoji_samples(limit=limit, workers=workers, counts=counts)
    return write_guarded_pool(samples, out, name="openmoji", columns=OPENMOJI_COLUMNS,
                              samples_per_shard=samples_per_shard,
                              manifest={"counts": counts, "source": _source(OPENMOJI_PACKAGE)})
