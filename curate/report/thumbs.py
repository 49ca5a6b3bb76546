"""Thumbnails for the report: a sample of kept samples and of each drop reason, and any other
samples a section asks for, read from the ingest stage's Parquet a row group at a time.

Reading is what costs: a row group holds thousands of images. So the sample is drawn from as
few row groups as can serve every group (greedily, the row group that serves the most still
wanted samples first), and within them by uid, which is a hash: an unbiased pick."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.report.facts import RunFacts
from curate.report.render import data_uri
from curate.stages.score.model_batches import decoded_rgb

KEPT = "kept"
SIDE = 112  # pixels: the longer side of a thumbnail


@dataclass(frozen=True)
class Thumb:
    """One sample as the report shows it."""

    uid: str
    caption: str | None
    image: str | None  # a data: URI, or None when the bytes do not decode (or there are none)


def locate(facts: RunFacts) -> pl.DataFrame:
    """uid, group (its drop reason, or "kept"), and where it lies: file index and row group."""
    groups = facts.dropped().select("uid", "drop_reason")
    parts = []
    for index, path in enumerate(facts.source_files):
        handle = pq.ParquetFile(path)
        sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
        uids = handle.read(columns=["uid"]).column(0)
        row_group = np.repeat(np.arange(len(sizes)), sizes)
        parts.append(pl.DataFrame({"uid": uids, "file": np.full(len(uids), index, np.int32),
                                   "row_group": row_group.astype(np.int32)}))
    where = pl.concat(parts) if parts else pl.DataFrame(schema={"uid": pl.String, "file": pl.Int32,
                                                                "row_group": pl.Int32})
    joined = where.lazy().join(groups, on="uid", how="left")
    return joined.with_columns(pl.col("drop_reason").fill_null(KEPT).alias("group")).drop("drop_reason").collect()


def pick(located: pl.DataFrame, per_group: int, max_row_groups: int) -> dict[str, list[str]]:
    """Up to per_group uids of every group, read from at most max_row_groups row groups."""
    counts = located.group_by("file", "row_group", "group").len()
    units = counts.select("file", "row_group").unique().sort("file", "row_group")
    names = sorted(counts["group"].unique().to_list())
    matrix = np.zeros((units.height, len(names)), np.int64)
    unit_index = {key: i for i, key in enumerate(units.iter_rows())}
    for file, row_group, group, n in counts.iter_rows():
        matrix[unit_index[(file, row_group)], names.index(group)] = n
    need = np.minimum(matrix.sum(axis=0), per_group)
    chosen = []
    while need.any() and len(chosen) < max_row_groups:
        best = int(np.argmax(np.minimum(matrix, need).sum(axis=1)))
        need -= np.minimum(matrix[best], need)
        matrix[best] = 0
        chosen.append(units.row(best))
    picked = located.join(pl.DataFrame(chosen, schema=["file", "row_group"], orient="row",
                                       schema_overrides={"file": pl.Int32, "row_group": pl.Int32}),
                          on=["file", "row_group"])
    top = picked.sort("uid").group_by("group", maintain_order=True).head(per_group)
    return {group: uids for group, uids in top.group_by("group").agg("uid").iter_rows()}


def fetch(facts: RunFacts, located: pl.DataFrame, uids: set[str]) -> dict[str, Thumb]:
    """Thumbnails of the given uids (those not ingested are left out)."""
    wanted = located.filter(pl.col("uid").is_in(list(uids)))
    thumbs, handles = {}, {}
    for (file, row_group), rows in wanted.group_by(["file", "row_group"]):
        handle = handles.setdefault(file, pq.ParquetFile(facts.source_files[file]))
        carried = [name for name in ("uid", "caption", "image") if name in handle.schema_arrow.names]
        table = handle.read_row_group(row_group, columns=carried)  # a metadata-only run carries no image
        hit = pc.is_in(table.column("uid"), value_set=pa.array(rows["uid"].to_list(), pa.string()))
        for i in np.flatnonzero(hit.to_numpy(zero_copy_only=False)):
            row = {name: table.column(name)[int(i)].as_py() for name in carried}
            image = row.get("image")
            thumbs[row["uid"]] = Thumb(row["uid"], row["caption"], encode(image) if image else None)
    return thumbs


def encode(image: bytes) -> str | None:
    """A WebP thumbnail as a data: URI, or None when the bytes do not decode."""
    picture = decoded_rgb(image)
    if picture is None:
        return None
    picture.thumbnail((SIDE, SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, "WEBP", quality=80, method=4)
    return data_uri(buffer.getvalue(), "image/webp")
