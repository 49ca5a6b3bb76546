"""semdedup: SemDeDup (Abbas et al., 2023). Spherical k-means on the image embeddings, then
within each cluster an image is dropped when its cosine similarity to an image kept before it
exceeds 1 - eps.

Partitioned by cluster: k-means is trained once on a seeded sample (prepare), every shard's
embeddings are assigned to their nearest centroid in parallel (buckets), and clusters are packed
into partitions whose tasks compare within their clusters side by side. The largest cluster
bounds a task's memory; the run summary reports it."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.dedup.greedy import remove, remove_within_groups
from curate.dedup.keep import keep_order
from curate.dedup.semantic import pairs_within_clusters
from curate.dedup.kmeans import nearest
from curate.partitions import BUCKET
from curate.stage import Collected, register
from curate.stages.dedup.centroids import in_parts, trained_centroids
from curate.stages.dedup.common import DEFAULT_EMBEDDING, DuplicateStage, KeepParams, duplicates_table, group_details, unpack

CENTROID_DISTANCE = "centroid_distance"
CENTROID_SIMILARITY = "centroid_similarity"


class SemDedupParams(KeepParams):
    """Clusters, eps, and the keep rule."""

    keep_by: str | None = Field(None, description="a score column, or centroid_distance (with prefer highest: "
                                "the member farthest from its centroid is kept, SemDeDup's default); "
                                "none: the smallest uid")
    embedding: str = Field(DEFAULT_EMBEDDING, description="a column of image embeddings")
    eps: float = Field(0.05, gt=0, lt=1, description="an image is a duplicate above similarity 1 - eps")
    clusters: int | None = Field(None, ge=1, description="k of k-means (default sqrt(n): 1,000 for a million)")
    train_size: int = Field(100_000, ge=1, description="embeddings, chosen by seed, that k-means is trained on")
    iterations: int = Field(20, ge=1, description="k-means iterations")
    seed: int = Field(0, ge=0, description="seed of the k-means initialisation")
    rule: Literal["kept", "earlier"] = Field("kept", description="kept: dropped when similar to a kept image; "
                                             "earlier: to any image before it in keep order (SemDeDup's code)")
    max_cluster_size: int | None = Field(None, ge=1, description="split a cluster the training sample shows to be "
                                         "larger than this into parts, by a k-means of its members: a task's "
                                         "memory stays bounded, but duplicates the split separates are both kept")


@register
class SemDedup(DuplicateStage):
    """Semantic deduplication within k-means clusters."""

    name = "semdedup"
    Params = SemDedupParams
    reason = "semantic_duplicate"
    buckets_need_prepare = True

    def compared_columns(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def _keep_column(self) -> str | None:
        return None if self.params.keep_by == CENTROID_DISTANCE else self.params.keep_by

    def prepare(self, collected: Collected) -> dict:
        """Train k-means on a seeded sample of the collected embeddings (the rows whose seeded
        hash of the uid is smallest, read shard by shard: the task holds the sample, never the
        pool); its centroids go to report/centroids.npy, reused while the inputs are the same.
        With max_cluster_size, clusters the sample shows too large are split into parts
        (curate.stages.dedup.centroids.split)."""
        params = self.params
        n = sum(collected.rows(shard) for shard in collected)
        with self.phase("k-means"):
            return trained_centroids(collected, params.embedding, params.clusters or math.ceil(math.sqrt(n)),
                                     params.train_size, params.seed, params.iterations, params.max_cluster_size)

    def bucket_count(self, prepared: dict | None) -> int:
        """One bucket per cluster, or per part of a split cluster."""
        return max(1, prepared["offsets"][-1] if "offsets" in prepared else prepared["clusters"])

    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """The nearest centroid of each embedding (in a split cluster, its nearest part's), and
        the similarity to it."""
        with self.phase("assign"):
            _, _, embeddings = unpack(rows, self.params.embedding)
            to_centroid, clusters = (column[:, 0] for column in nearest(embeddings, np.load(prepared["centroids"])))
            if "offsets" in prepared:
                clusters, to_centroid = in_parts(embeddings, clusters, to_centroid, prepared)
        return pa.table({BUCKET: pa.array(clusters.astype(np.int32)),
                         CENTROID_SIMILARITY: pa.array(to_centroid.astype(np.float32))})

    def row_bytes(self, prepared: dict | None) -> float:
        """The embedding as stored (2 bytes a dimension) and decoded (4), and the uid."""
        return 6.0 * prepared["dimensions"] + 96

    def find(self, rows: pa.Table, prepared: dict | None) -> tuple[pa.Table, dict]:
        """Compare within clusters, apply the rule in keep order."""
        params = self.params
        with self.phase("read"):
            uids, priority, embeddings = unpack(rows, params.embedding)
            clusters = rows.column(BUCKET).to_numpy()
        if params.keep_by == CENTROID_DISTANCE:
            priority = 1.0 - rows.column(CENTROID_SIMILARITY).to_numpy().astype(np.float64)
            priority = priority if params.prefer == "highest" else -priority
        rank, pairs = keep_order(pl.Series(uids), priority), {}
        if params.rule == "kept":  # compared with kept items only: memory does not grow with the copies
            with self.phase("keep"):
                removals = remove_within_groups(embeddings, clusters, rank, 1.0 - params.eps)
        else:
            with self.phase("pairs"):
                a, b, sim = pairs_within_clusters(embeddings, clusters, 1.0 - params.eps)
            with self.phase("keep"):
                removals, pairs = remove(rank, a, b, sim, params.rule), {"pairs": int(len(a))}
        sizes = np.bincount(clusters) if len(clusters) else np.zeros(0, np.int64)
        details = group_details(removals, len(uids)) | pairs | {
            "clusters": prepared["clusters"], "largest_cluster": int(sizes.max(initial=0)),
            "trained_on": prepared["trained_on"], **({"split_clusters": prepared["split_clusters"],
                                                      "parts": prepared["offsets"][-1]} if "offsets" in prepared else {})}
        return duplicates_table(uids, rank, removals, cluster=clusters), details
