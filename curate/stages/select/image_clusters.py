"""DataComp's image-based filter: cluster the pool's image embeddings with k-means (FAISS, plain
L2, as DataComp trains its centroids), find the centroid each target image is nearest to
(DataComp's target is ImageNet-1k train; here any embeddings of the same model a user names),
and keep the samples whose own nearest centroid is one of those.

"Nearest" is DataComp's: the largest inner product with the centroid as trained, on the
embeddings as stored (float16, not normalised again). The reduce holds the training sample
(`train_fraction` of the alive pool, chosen by uid) and the centroids; each apply task holds
the centroids and one shard's embeddings."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.dedup.embeddings import decode
from curate.dedup.kmeans import nearest, train_centroids
from curate.errors import ConfigError, InputError
from curate.run import file_sha256, stable_hash, write_atomic
from curate.stage import Collected, GlobalStage, StageParams, register

REASON = "cluster_not_in_target"


class ImageClusterParams(StageParams):
    """The embedding column, the target embeddings and the clustering (DataComp's defaults)."""

    embedding: str = Field("l14_img", description="the image embedding column (DataComp's L/14 by default)")
    target: list[str] = Field(min_length=1, description="target image embeddings of the same model: .npy files "
                              "(n x d), .npz files (their target_key array), or folders of them")
    target_key: str = Field("l14_img", description="the array of a target .npz file")
    clusters: int = Field(100_000, ge=1, description="k of k-means (DataComp: 100,000 for its small pool; "
                          "about one per 128 samples)")
    train_fraction: float = Field(1.0, gt=0, le=1, description="share of the alive samples, chosen by uid, that "
                                  "k-means is trained on (DataComp: all for small and medium, 0.3 for large)")
    iterations: int = Field(20, ge=1, description="k-means iterations")
    seed: int = Field(0, description="k-means seed")


@register
class ImageClusterFilter(GlobalStage):
    """image_cluster per sample; those outside the target's clusters are dropped."""

    name = "image_cluster_filter"
    Params = ImageClusterParams
    output_schema = "image_clusters.v1"

    def needed_columns(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def needed_for_collect(self) -> tuple[str, ...]:
        """The embedding column."""
        return (self.params.embedding,)

    def content_digest(self) -> str | None:
        """The target files' sha256s: other targets are another configuration."""
        return stable_hash([file_sha256(path) for path in target_files(self.params.target)])

    def collect(self, view: pa.Table) -> pa.Table:
        """The embeddings k-means trains on: alive rows that have one, `train_fraction` of them
        by uid."""
        alive = view.filter(pc.and_(pc.is_null(view.column("drop_reason")),
                                    pc.is_valid(view.column(self.params.embedding))))
        if self.params.train_fraction < 1:
            alive = alive.filter(pa.array(uid_share(alive.column("uid")) < self.params.train_fraction))
        return pa.table({"embedding": alive.column(self.params.embedding)})

    def reduce(self, collected: Collected) -> dict:
        """The centroids, then the set of those the target images are nearest to."""
        path = self._centroids(collected)
        centroids = np.load(path)
        target = np.concatenate([load_target(p, self.params.target_key) for p in target_files(self.params.target)])
        if target.shape[1] != centroids.shape[1]:
            raise ConfigError(f"stage {self.id!r}: the target embeddings have {target.shape[1]} dimensions, "
                              f"{self.params.embedding} {centroids.shape[1]}: they must come from one model")
        chosen = np.unique(nearest(target, centroids)[1][:, 0])
        return {"centroids": str(path), "target_clusters": chosen.tolist(),
                "details": {"clusters": len(centroids), "target_images": len(target),
                            "target_clusters": len(chosen)}}

    def _centroids(self, collected: Collected) -> Path:
        """Train the centroids on the collected sample, or reuse those trained from the same
        inputs (the file is named after them); return their file."""
        path = collected.report_dir / f"centroids-{collected.key[:16]}.npy"
        if path.exists():
            return path
        train = np.concatenate([decode(collected.column(s, "embedding"), normalise=False) for s in collected
                                if collected.rows(s)] or [np.zeros((0, 0), np.float32)])
        if len(train) < self.params.clusters:
            raise ConfigError(f"stage {self.id!r}: {len(train):,} embeddings to train {self.params.clusters:,} "
                              f"clusters; lower clusters (DataComp: about one per 128 samples)")
        centroids = train_centroids(train, self.params.clusters, len(train), self.params.seed,
                                    self.params.iterations, spherical=False)
        buffer = io.BytesIO()
        np.save(buffer, centroids)
        write_atomic(path, buffer.getvalue())
        return path

    def apply(self, view: pa.Table, state: dict, shard: str) -> pa.Table:
        """Each alive row's nearest centroid; rows outside the target's clusters are dropped."""
        rows = view.num_rows
        alive = pc.is_null(view.column("drop_reason")).to_numpy(zero_copy_only=False)
        has = view.column(self.params.embedding).is_valid().to_numpy(zero_copy_only=False)
        scored = np.flatnonzero(alive & has)
        cluster = np.full(rows, -1, np.int64)
        if len(scored):
            vectors = decode(view.column(self.params.embedding).take(pa.array(scored)), normalise=False)
            cluster[scored] = nearest(vectors, np.load(state["centroids"]))[1][:, 0]
        inside = np.isin(cluster, np.asarray(state["target_clusters"], np.int64))
        reason = np.where(alive & ~has, "missing_embedding", np.where((cluster >= 0) & ~inside, REASON, None))
        return pa.table({"uid": view.column("uid"),
                         "image_cluster": pa.array(cluster, pa.int32(), mask=cluster < 0),
                         "drop_reason": pa.array(reason.astype(object), pa.string())})

    def limitations(self, details: dict | None) -> list[str]:
        """Only what resembles the target images is kept."""
        return [f"- {self.id}: only images in the k-means clusters nearest to the target images "
                f"({', '.join(self.params.target)}) were kept: the set leans to what the target shows."]

    def finish(self, state, stage_dir, view, outputs) -> dict:
        """The clustering's figures, for the run summary."""
        return state["details"]


def uid_share(uids: pa.ChunkedArray) -> np.ndarray:
    """A number in [0, 1) per uid, from its first 8 hex digits: a sample by uid, the same on any
    worker and in any shard order."""
    heads = pc.utf8_slice_codeunits(uids, 0, 8).to_pylist()
    return np.array([int(head, 16) for head in heads], np.float64) / 2**32


def target_files(paths: list[str]) -> list[Path]:
    """The .npy and .npz files named, folders expanded (sorted)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz"))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"target embeddings {path} do not exist")
    if not files:
        raise InputError(f"no .npy or .npz files in {', '.join(paths)}")
    return files


def load_target(path: Path, key: str) -> np.ndarray:
    """An (n, d) float32 matrix of target embeddings, as stored."""
    try:
        loaded = np.load(path, allow_pickle=False)
        matrix = loaded[key] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"cannot read target embeddings {path}: {error}") from None
    if matrix.ndim != 2:
        raise InputError(f"target embeddings {path} are {matrix.shape}, not one vector a row")
    return matrix.astype(np.float32)
