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
from curate.stage import Collected, register
from curate.stages.dedup.common import DuplicateStage, KeepParams, duplicates_table, group_details


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

    def find(self, collected: Collected) -> tuple[pa.Table, dict]:
        """Groups of equal keys; the first member in keep order is kept, the rest point to it."""
        if not len(collected):
            return duplicates_table(pa.array([], pa.string()), Removals.none(0)), group_details(Removals.none(0), 0)
        table = pa.concat_tables([collected[shard] for shard in collected])
        uids = table.column("uid").combine_chunks()
        rank = keep_order(pl.Series(uids), table.column("priority").to_numpy())
        frame = pl.DataFrame({"key": pl.Series(table.column("key").combine_chunks()), "rank": rank}).with_row_index("item")
        frame = frame.with_columns(pl.col("item").sort_by("rank").first().over("key").alias("root"),
                                   pl.len().over("key").alias("size"))
        item, root = frame["item"].to_numpy().astype(np.int64), frame["root"].to_numpy().astype(np.int64)
        removed = root != item
        removals = Removals(removed, np.where(removed, root, -1), np.where(removed, 1.0, np.nan).astype(np.float32),
                            np.where(frame["size"].to_numpy() > 1, rank[root], -1))
        return duplicates_table(uids, removals), group_details(removals, len(uids))

