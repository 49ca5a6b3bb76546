"""semdedup: SemDeDup (Abbas et al., 2023). Spherical k-means on the image embeddings, then
within each cluster an image is dropped when its cosine similarity to an image kept before it
exceeds 1 - eps."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.dedup.greedy import remove, remove_within_groups
from curate.dedup.keep import keep_order
from curate.dedup.kmeans import nearest, train_centroids
from curate.dedup.semantic import pairs_within_clusters
from curate.stage import Collected, register
from curate.stages.dedup.common import DEFAULT_EMBEDDING, DuplicateStage, KeepParams, duplicates_table, gather, group_details

CENTROID_DISTANCE = "centroid_distance"


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


@register
class SemDedup(DuplicateStage):
    """Semantic deduplication within k-means clusters."""

    name = "semdedup"
    Params = SemDedupParams
    reason = "semantic_duplicate"

    def compared_columns(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def _keep_column(self) -> str | None:
        return None if self.params.keep_by == CENTROID_DISTANCE else self.params.keep_by

    def find(self, collected: Collected) -> tuple[pa.Table, dict]:
        """Cluster, compare within clusters, apply the rule in keep order."""
        params = self.params
        with self.phase("read"):
            uids, priority, embeddings = gather(collected, params.embedding)
        k = params.clusters or math.ceil(math.sqrt(len(uids)))
        with self.phase("k-means"):
            centroids = train_centroids(embeddings, k, params.train_size, params.seed, params.iterations)
        with self.phase("assign"):
            to_centroid, clusters = (column[:, 0] for column in nearest(embeddings, centroids))
            clusters = clusters.astype(np.int32)
        if params.keep_by == CENTROID_DISTANCE:
            priority = 1.0 - to_centroid.astype(np.float64)
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
        sizes = np.bincount(clusters)
        details = group_details(removals, len(uids)) | pairs | {
            "clusters": len(centroids), "largest_cluster": int(sizes.max(initial=0)),
            "trained_on": int(min(len(uids), max(params.train_size, k)))}
        return duplicates_table(uids, removals, cluster=clusters), details
