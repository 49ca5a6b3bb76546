"""dedup_near: near-duplicate images, by the cosine similarity of their image embeddings.

Partitioned by the cells of an inverted file: k-means centroids are trained once on a seeded
sample (prepare); every embedding is listed in its nearest cell (its home) and copied into the
`nprobe` cells nearest to it (buckets), and cells are packed into partitions whose tasks compare,
in each cell, every copy with the cell's members. A pair is reported in one cell only (see
curate.dedup.search.cell_pairs), so each is found once, whatever the partitions. The similar
pairs (not the embeddings) are then gathered by one task that applies the keep rule over the
whole pool: a removal can depend on pairs found in other cells. Small pools (index "exact", auto
up to 20,000 embeddings) are one cell: every pair is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.dedup.embeddings import normalised, stored
from curate.dedup.greedy import remove
from curate.dedup.keep import keep_order
from curate.dedup.kmeans import nearest
from curate.dedup.search import TRAIN_PER_CELL, cell_pairs, choose_index
from curate.partitions import BUCKET, ROW, SHARD
from curate.run import write_parquet_atomic
from curate.stage import Collected, register
from curate.stages.dedup.centroids import trained_centroids
from curate.stages.dedup.common import (DEFAULT_EMBEDDING, DuplicateStage, KeepParams, duplicates_table,
                                        group_details, merged_details, unpack)

HOME, PROBES = "home_cell", "probe_cells"
_PAIR_COLUMNS = ("uid", "priority", SHARD)  # of each side of a pair, the second side's prefixed "other_"


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
    buckets_need_prepare = True

    def compared_columns(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def prepare(self, collected: Collected) -> dict:
        """The index for the pool's size; for an inverted file, its centroids (trained on
        `nlist` x 32 embeddings of a seeded sample, cached in report/centroids.npy)."""
        params = self.params
        choice = choose_index(sum(collected.rows(shard) for shard in collected), params.index, params.nlist,
                              params.nprobe)
        if choice.kind == "exact":
            return {"index": "exact", "cells": 1, "nprobe": 1}
        with self.phase("k-means"):
            prepared = trained_centroids(collected, params.embedding, choice.nlist, choice.nlist * TRAIN_PER_CELL,
                                         params.seed, iterations=10)
        return prepared | {"index": "ivf", "cells": prepared["clusters"],
                           "nprobe": min(choice.nprobe, prepared["clusters"])}

    def bucket_count(self, prepared: dict | None) -> int:
        """One bucket per cell."""
        return max(1, prepared["cells"])

    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """Each row once per cell it probes (nearest first), with its home cell and its probes."""
        if prepared["index"] == "exact":
            probes = np.zeros((rows.num_rows, 1), np.int64)
        else:
            with self.phase("assign"):
                _, _, embeddings = unpack(rows, self.params.embedding)
                _, probes = nearest(embeddings, np.load(prepared["centroids"]), prepared["nprobe"])
        width = probes.shape[1]
        listed = pa.array(np.repeat(probes, width, axis=0).ravel().astype(np.int32))
        return pa.table({ROW: np.repeat(np.arange(rows.num_rows), width), BUCKET: probes.ravel().astype(np.int32),
                         HOME: np.repeat(probes[:, 0], width).astype(np.int32),
                         PROBES: pa.FixedSizeListArray.from_arrays(listed, width)})

    def row_bytes(self, prepared: dict | None) -> float:
        """A copy's embedding as stored (2 bytes a dimension; a cell at a time is decoded), its
        uid and its cells."""
        return 2.0 * prepared.get("dimensions", 512) + 112 + 4 * prepared["nprobe"]

    def reduce_partition(self, rows: pa.Table, prepared: dict | None, report_dir: Path, name: str) -> dict:
        """The similar pairs of the partition's cells, each once, with both sides' uid, priority
        and shard, to report/pairs/<partition>.parquet. The copies stay as stored (float16) and
        are decoded a cell at a time."""
        a, b, sim = self._pairs(rows, prepared)
        uids, priority, _ = unpack(rows)
        shards = rows.column(SHARD)
        sides = [(uids.take(pa.array(side)), pa.array(priority[side]), shards.take(pa.array(side))) for side in (a, b)]
        pairs = pa.table({**dict(zip(_PAIR_COLUMNS, sides[0])), **{f"other_{n}": v for n, v in zip(_PAIR_COLUMNS, sides[1])},
                          "similarity": pa.array(sim, pa.float32())})
        path = report_dir / "pairs" / f"{name}.parquet"
        write_parquet_atomic(path, pairs)
        cells, homes = rows.column(BUCKET).to_numpy(), rows.column(HOME).to_numpy()
        return {"files": [str(path)], "details": {"compared": int((cells == homes).sum()), "pairs": len(sim)}}

    def _pairs(self, rows: pa.Table, prepared: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, row, similarity) of the partition's pairs, cell by cell."""
        cells, homes = rows.column(BUCKET).to_numpy(), rows.column(HOME).to_numpy()
        probes = np.asarray(rows.column(PROBES).combine_chunks().flatten()).reshape(rows.num_rows, prepared["nprobe"])
        identity = pl.Series(rows.column("uid").combine_chunks().cast(pa.string())).rank("dense").to_numpy()
        with self.phase("read"):
            matrix = stored(rows.column(self.params.embedding), " of the partition")
        order = np.argsort(cells, kind="stable")
        bounds = np.flatnonzero(np.r_[True, cells[order][1:] != cells[order][:-1], True]) if len(cells) else [0]
        found = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))]
        for start, end in zip(bounds[:-1], bounds[1:]):
            copies = order[start:end]
            with self.phase("search"):
                vectors = normalised(matrix[copies].astype(np.float32))
                a, b, sim = cell_pairs(vectors, cells[copies], homes[copies], probes[copies], identity[copies],
                                       self.params.threshold)
            found.append((copies[a], copies[b], sim))
        return tuple(np.concatenate(parts) for parts in zip(*found))

    def combine(self, results: list[dict], prepared: dict | None, report_dir: Path) -> dict:
        """Every partition's pairs in one task: the keep rule over the pool, the groups to
        report/duplicates/all.parquet and the removed uids by shard to report/removed/all.parquet.
        The task holds the pairs (about 100 bytes each), not the embeddings."""
        pairs = pl.read_parquet([r["files"][0] for r in results])
        other = {f"other_{n}": n for n in _PAIR_COLUMNS}
        items = pl.concat([pairs.select(_PAIR_COLUMNS), pairs.select(list(other)).rename(other)])
        items = items.unique("uid", keep="first").sort("uid").with_row_index("item")
        index = items.select("uid", "item")
        a = pairs.join(index, on="uid", how="left", maintain_order="left")["item"].to_numpy()
        b = pairs.join(index.rename({"uid": "other_uid"}), on="other_uid", how="left", maintain_order="left")["item"]
        with self.phase("keep"):
            rank = keep_order(items["uid"], items["priority"].to_numpy())
            removals = remove(rank, a.astype(np.int64), b.to_numpy().astype(np.int64), pairs["similarity"].to_numpy())
        found = duplicates_table(items["uid"].to_arrow().cast(pa.string()), rank, removals)
        removed = items.filter(pl.Series(removals.removed)).select(SHARD, "uid").sort(SHARD, "uid")
        paths = [report_dir / "duplicates" / "all.parquet", report_dir / "removed" / "all.parquet"]
        digest = write_parquet_atomic(paths[0], found)
        write_parquet_atomic(paths[1], removed.to_arrow().cast(pa.schema([(SHARD, pa.string()), ("uid", pa.string())])))
        details = merged_details([r["details"] for r in results])
        details |= group_details(removals, details.get("compared", 0)) | _index_details(prepared)
        return {"found": [str(paths[0])], "removed": [str(paths[1])], "pairs": [r["files"][0] for r in results],
                "found_sha256": digest, "details": details}


def _index_details(prepared: dict) -> dict:
    if prepared["index"] == "exact":
        return {"index": "exact"}
    return {"index": "ivf", "nlist": prepared["cells"], "nprobe": prepared["nprobe"],
            "trained_on": prepared["trained_on"]}
