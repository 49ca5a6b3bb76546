"""dedup_near: near-duplicate images, by the cosine similarity of their image embeddings, found
with FAISS (exact for small pools, IVF for large ones). Its reduce is one partition: any two
images of the pool may be similar (semdedup spreads the work over k-means clusters)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.dedup.greedy import remove
from curate.dedup.keep import keep_order
from curate.dedup.search import choose_index, similar_pairs
from curate.partitions import BUCKET
from curate.stage import register
from curate.stages.dedup.common import DEFAULT_EMBEDDING, DuplicateStage, KeepParams, duplicates_table, group_details, unpack


class NearParams(KeepParams):
    """Which embeddings, how similar is a duplicate, and how to search."""

    embedding: str = Field(DEFAULT_EMBEDDING, description="a column of image embeddings (clip_score's "
                           "<name>_image_embedding)")
    threshold: float = Field(0.95, gt=0, le=1, description="cosine similarity at or above which two images are duplicates")
    index: Literal["auto", "exact", "ivf"] = Field("auto", description="auto: exact up to 20,000 embeddings, "
                                                   "an inverted file (k-means cells) above")
    nlist: int | None = Field(None, ge=1, description="IVF cells (default 2 sqrt(n))")
    nprobe: int = Field(4, ge=1, description="IVF cells each embedding is compared in: more finds more, slower")
    seed: int = Field(0, ge=0, description="seed of the k-means of the inverted file")


@register
class DedupNear(DuplicateStage):
    """Near-duplicates: an image is dropped when it is this similar to an image kept before it."""

    name = "dedup_near"
    Params = NearParams
    reason = "near_duplicate"

    def compared_columns(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def bucket_count(self, prepared: dict | None) -> int:
        """One bucket: every pair may be similar, so one task compares the whole pool."""
        return 1

    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """Bucket 0 for every row."""
        return pa.table({BUCKET: np.zeros(rows.num_rows, np.int32)})

    def find(self, rows: pa.Table, prepared: dict | None) -> tuple[pa.Table, dict]:
        """Similar pairs by FAISS, then the keep-order rule."""
        params = self.params
        with self.phase("read"):
            uids, priority, embeddings = unpack(rows, params.embedding)
        choice = choose_index(len(uids), params.index, params.nlist, params.nprobe)
        with self.phase("search"):
            a, b, sim = similar_pairs(embeddings, params.threshold, choice, params.seed)
        with self.phase("keep"):
            rank = keep_order(pl.Series(uids), priority)
            removals = remove(rank, a, b, sim)
        details = group_details(removals, len(uids)) | {"pairs": int(len(a)), "index": choice.kind}
        if choice.kind == "ivf":
            details |= {"nlist": choice.nlist, "nprobe": choice.nprobe}
        return duplicates_table(uids, rank, removals), details
