"""k-means centroids trained once on a seeded sample of a stage's collected embeddings, cached
in its report folder: SemDeDup's clusters and the inverted file of the near-duplicate search."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.dedup.kmeans import nearest, seeded_hash, split_centroids, split_parts, train_centroids
from curate.run import file_sha256, read_json, write_atomic, write_json_atomic
from curate.stage import Collected
from curate.stages.dedup.common import unpack

CENTROIDS, CENTROIDS_RECORD, PARTS = "centroids.npy", "centroids.json", "parts.npy"


def trained_centroids(collected: Collected, column: str, k: int, train_size: int, seed: int,
                      iterations: int, max_cluster_size: int | None = None) -> dict:
    """Train k-means (k centroids) on the `train_size` collected rows whose seeded hash of the
    uid is smallest; save the centroids to report/centroids.npy. With max_cluster_size, a
    cluster estimated from the sample to be larger is split into parts by a second k-means on its
    members in the sample (report/parts.npy, see split). The prepared state names the files,
    their digests and shapes; it is reused while the collect results are the same."""
    cached = read_json(collected.report_dir / CENTROIDS_RECORD)
    if cached and cached["key"] == collected.key and (collected.report_dir / CENTROIDS).is_file():
        return cached["prepared"]
    train = seeded_rows(collected, column, max(train_size, k), seed)
    centroids = train_centroids(train, k, len(train), seed, iterations)
    path = _saved(collected.report_dir / CENTROIDS, centroids)
    prepared = {"centroids": str(path), "sha256": file_sha256(path), "clusters": len(centroids),
                "dimensions": int(centroids.shape[1]), "trained_on": len(train)}
    if max_cluster_size:
        pool_rows = sum(collected.rows(shard) for shard in collected)
        prepared |= split(collected.report_dir, train, centroids, pool_rows, max_cluster_size, seed, iterations)
    write_json_atomic(collected.report_dir / CENTROIDS_RECORD, {"key": collected.key, "prepared": prepared})
    return prepared


def split(report_dir: Path, train: np.ndarray, centroids: np.ndarray, pool_rows: int, max_size: int, seed: int,
          iterations: int) -> dict:
    """The parts of the clusters estimated larger than max_size (members in the sample x pool
    rows / sample rows), each split by a k-means of its members in the sample: their centroids
    to report/parts.npy, cluster i's parts being rows offsets[i] to offsets[i + 1] - 1 (an
    unsplit cluster is one part, its own centroid). Nothing when no cluster is that large."""
    labels = nearest(train, centroids)[1][:, 0]
    parts = split_parts(labels, len(centroids), pool_rows / max(1, len(train)), max_size)
    if (parts == 1).all():
        return {}
    path = _saved(report_dir / PARTS, split_centroids(train, labels, centroids, parts, seed, iterations))
    return {"parts": str(path), "parts_sha256": file_sha256(path), "offsets": np.r_[0, np.cumsum(parts)].tolist(),
            "split_clusters": int((parts > 1).sum())}


def in_parts(embeddings: np.ndarray, clusters: np.ndarray, to_centroid: np.ndarray,
             prepared: dict) -> tuple[np.ndarray, np.ndarray]:
    """(part, similarity to its centroid) of embeddings whose nearest cluster is `clusters` and
    similarity to it `to_centroid`: for a split cluster, its nearest part."""
    offsets, parts = np.asarray(prepared["offsets"]), np.load(prepared["parts"])
    part, similarity = offsets[clusters].copy(), to_centroid.copy()
    for cluster in np.unique(clusters[np.diff(offsets)[clusters] > 1]):
        mine = clusters == cluster
        nearest_part = nearest(embeddings[mine], parts[offsets[cluster]:offsets[cluster + 1]])
        similarity[mine], part[mine] = nearest_part[0][:, 0], part[mine] + nearest_part[1][:, 0]
    return part, similarity


def _saved(path: Path, matrix: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    write_atomic(path, buffer.getvalue())
    return path


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
