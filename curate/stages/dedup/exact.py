"""dedup_exact: samples whose image bytes are identical (sha256), or whose image bytes and
caption both are; one member of each group is kept."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.dedup.greedy import Removals
from curate.dedup.keep import keep_order
from curate.partitions import BUCKET, hex_prefix_buckets
from curate.stage import register
from curate.stages.dedup.common import DuplicateStage, KeepParams, duplicates_table, group_details, unpack


class ExactParams(KeepParams):
    """What counts as the same sample."""

    match: Literal["image", "image_and_caption"] = Field(
        "image", description="image: identical image bytes; image_and_caption: identical bytes and caption")


@register
class DedupExact(DuplicateStage):
    """Exact duplicates by sha256, kept member by the keep policy."""

    name = "dedup_exact"
    Params = ExactParams

    @property
    def reason(self) -> str:
        """duplicate_image, or duplicate_image_caption."""
        return "duplicate_image" if self.params.match == "image" else "duplicate_image_caption"

    def compared_columns(self) -> tuple[str, ...]:
        """The image's sha256 (ingest hashes the bytes; a metadata-only pool gives its own, as
        DataComp's does), and with match image_and_caption the caption."""
        return ("sha256",) if self.params.match == "image" else ("sha256", "caption")

    def compared_values(self, alive: pa.Table) -> dict:
        """key: the image's sha256 (followed by that of the caption)."""
        images = alive.column("sha256").to_pylist()
        if self.params.match == "image":
            keys = [image.lower().encode() for image in images]
        else:
            captions = alive.column("caption").to_pylist()
            keys = [i.lower().encode() + hashlib.sha256(c.encode()).digest() for i, c in zip(images, captions)]
        return {"key": pa.array(keys, pa.binary())}

    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """The image sha256's first 16 bits: equal images share a bucket."""
        return pa.table({BUCKET: hex_prefix_buckets(rows.column("key"))})

    def row_bytes(self, prepared: dict | None) -> float:
        """The uid (32), the key (64 to 96) and the priority (8)."""
        return 136.0

    def find(self, rows: pa.Table, prepared: dict | None) -> tuple[pa.Table, dict]:
        """Groups of equal keys; the first member in keep order is kept, the rest point to it."""
        uids, priority, _ = unpack(rows)
        if not len(uids):
            return duplicates_table(uids, np.zeros(0, np.int64), Removals.none(0)), group_details(Removals.none(0), 0)
        rank = keep_order(pl.Series(uids), priority)
        frame = pl.DataFrame({"key": pl.Series(rows.column("key").combine_chunks()), "rank": rank}).with_row_index("item")
        frame = frame.with_columns(pl.col("item").sort_by("rank").first().over("key").alias("root"),
                                   pl.len().over("key").alias("size"))
        item, root = frame["item"].to_numpy().astype(np.int64), frame["root"].to_numpy().astype(np.int64)
        removed = root != item
        removals = Removals(removed, np.where(removed, root, -1), np.where(removed, 1.0, np.nan).astype(np.float32),
                            np.where(frame["size"].to_numpy() > 1, rank[root], -1))
        return duplicates_table(uids, rank, removals), group_details(removals, len(uids))
