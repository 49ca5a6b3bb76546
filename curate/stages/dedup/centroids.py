"""k-means centroids trained once on a seeded sample of a stage's collected embeddings, cached
in its report folder: SemDeDup's clusters and the inverted file of the near-duplicate search."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from curate.dedup.kmeans import seeded_hash, train_centroids
from curate.run import file_sha256, read_json, write_atomic, write_json_atomic
from curate.stage import Collected
from curate.stages.dedup.common import unpack

CENTROIDS, CENTROIDS_RECORD = "centroids.npy", "centroids.json"


def trained_centroids(collected: Collected, column: str, k: int, train_size: int, seed: int,
                      iterations: int) -> dict:
    """Train k-means (k centroids) on the `train_size` collected rows whose seeded hash of the
    uid is smallest; save the centroids to report/centroids.npy. The prepared state names the
    file, its digest and shape; it is reused while the collect results are the same."""
    cached = read_json(collected.report_dir / CENTROIDS_RECORD)
    if cached and cached["key"] == collected.key and (collected.report_dir / CENTROIDS).is_file():
        return cached["prepared"]
    train = seeded_rows(collected, column, max(train_size, k), seed)
    centroids = train_centroids(train, k, len(train), seed, iterations)
    path = collected.report_dir / CENTROIDS
    buffer = io.BytesIO()
    np.save(buffer, centroids)
    write_atomic(path, buffer.getvalue())
    prepared = {"centroids": str(path), "sha256": file_sha256(path), "clusters": len(centroids),
                "dimensions": int(centroids.shape[1]), "trained_on": len(train)}
    write_json_atomic(collected.report_dir / CENTROIDS_RECORD, {"key": collected.key, "prepared": prepared})
    return prepared


def seeded_rows(collected: Collected, column: str, size: int, seed: int) -> np.ndarray:
    """The embeddings of the `size` rows whose seeded hash of the uid is smallest, in shard
    order: a sample that does not depend on how the pool is sharded, read in two passes that
    each hold one shard and the sample."""
    smallest = np.zeros(0, np.uint64)
    for shard in collected:
        keys = np.concatenate([smallest, seeded_hash(collected.column(shard, "uid"), seed)])
        smallest = np.partition(keys, size - 1)[:size] if len(keys) > size else keys
    if not len(smallest):
        return np.zeros((0, 1), np.float32)
    cut, parts = smallest.max(), []
    for shard in collected:
        table = collected[shard].select(["uid", "priority", column])
        chosen = seeded_hash(table.column("uid"), seed) <= cut
        if chosen.any():
            parts.append(unpack(table.filter(pa.array(chosen)), column)[2])
    return np.concatenate(parts)
