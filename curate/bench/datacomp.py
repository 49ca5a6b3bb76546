"""`curate bench datacomp`: metadata-only curation of a pool in DataComp's layout, against the
same filters written as one plain polars script over the same files, each in a fresh process
limited to one thread (figures per core).

The filters: DataComp's basic filter, then the top 30% by L/14 score (DataComp's threshold rule,
over the basic filter's survivors), then DataComp's image-based filter (k-means of the survivors'
L/14 image embeddings, trained on a share of them chosen by uid; the clusters nearest to the
pool's target images kept), then the subset file. Both sides must give the same uids.

Run as a module, it runs one side: `python -m curate.bench.datacomp curate|polars POOL OUT JSON`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curate.bench.memory import MemorySampler
from curate.stages.select.basic_filter import lid176

FRACTION = 0.3
ONE_THREAD = {"POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Clustering:
    """The image-based filter's k-means."""

    clusters: int = 1000
    train_fraction: float = 0.1
    iterations: int = 20
    seed: int = 0


def pipeline(pool: Path, run_dir: Path, clustering: Clustering) -> dict:
    """The curate side, as a pipeline file's mapping."""
    return {"name": "bench-datacomp", "run_dir": str(run_dir), "executor": {"kind": "local"}, "stages": [
        {"stage": "ingest_datacomp", "params": {"inputs": str(pool / "metadata" / "*.parquet"),
                                                "embeddings": ["l14_img"]}},
        {"stage": "basic_filter"},
        {"stage": "select_top_fraction", "params": {"column": "clip_l14_similarity_score", "fraction": FRACTION}},
        {"stage": "image_cluster_filter", "params": {"target": [str(pool / "target.npz")], **asdict(clustering)}},
        {"stage": "export_subset"}]}


def run_curate(pool: Path, out: Path, clustering: Clustering) -> dict:
    """Run the pipeline from scratch; seconds per stage and the subset file."""
    import shutil

    from curate.config import PipelineConfig
    from curate.pipeline import run_pipeline

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = run_pipeline(PipelineConfig(**pipeline(pool, out, clustering)))
    seconds = time.perf_counter() - started
    stages = {s["stage_id"]: s["wall_seconds"] for s in summary["stages"]}
    return {"seconds": seconds, "stages": stages, "rows": summary["ingested"], "curated": summary["curated"],
            "subset": str(out / "export_subset" / "subset.npy")}


def run_polars(pool: Path, out: Path, clustering: Clustering) -> dict:
    """The same filters as a user would write them with polars, numpy and FAISS."""
    import polars as pl

    from curate.dedup.kmeans import nearest, train_centroids
    from curate.io.subset import uids_to_u8u8, write_subset

    started = time.perf_counter()
    files = sorted((pool / "metadata").glob("*.parquet"))
    frame = pl.concat([pl.read_parquet(f, columns=["uid", "text", "original_width", "original_height",
                                                   "clip_l14_similarity_score"]).with_columns(
        file=pl.lit(i), row=pl.int_range(pl.len())) for i, f in enumerate(files)])
    model = lid176()  # the language identifier curate's basic filter asks, asked the same way
    english = [model.predict(t.replace("\n", " "), k=1)[0][0] == "__label__en" for t in frame["text"]]
    short, long = pl.min_horizontal("original_width", "original_height"), pl.max_horizontal("original_width", "original_height")
    frame = frame.filter(pl.Series(english) & (pl.col("text").str.count_matches(r"[^\s\x1c-\x1f]+") > 2)
                         & (pl.col("text").str.len_chars() > 5) & (short >= 200) & (long / short <= 3))
    scores = frame["clip_l14_similarity_score"].fill_null(np.nan).to_numpy()
    threshold = -np.sort(-scores)[int(len(scores) * FRACTION)]
    frame = frame.filter(pl.col("clip_l14_similarity_score") >= threshold)
    parts = frame.partition_by("file", maintain_order=True, as_dict=True)  # files in order, rows in order
    embeddings = np.concatenate([np.zeros((0, 768), np.float16)] + [
        np.load(files[index].with_suffix(".npz"))["l14_img"][part["row"].to_numpy()]
        for (index,), part in parts.items()]).astype(np.float32)
    share = frame["uid"].str.slice(0, 8).str.to_integer(base=16).to_numpy() / 2**32
    train = embeddings[share < clustering.train_fraction]
    centroids = train_centroids(train, clustering.clusters, len(train), clustering.seed, clustering.iterations,
                                spherical=False)
    target = np.load(pool / "target.npz")["l14_img"].astype(np.float32)
    chosen = np.unique(nearest(target, centroids)[1][:, 0])
    kept = frame.filter(pl.Series(np.isin(nearest(embeddings, centroids)[1][:, 0], chosen)))
    subset = out / "subset.npy"
    write_subset(subset, uids_to_u8u8(kept["uid"].to_list()))
    return {"seconds": time.perf_counter() - started, "curated": kept.height, "subset": str(subset)}


def run_side(side: str, pool: Path, out: Path, clustering: Clustering) -> dict:
    """One side in a fresh process limited to one thread, with that process's peak memory."""
    out.mkdir(parents=True, exist_ok=True)
    result = out / f"{side}.json"
    command = [sys.executable, "-m", "curate.bench.datacomp", side, str(pool), str(out / side), str(result),
               json.dumps(asdict(clustering))]
    with MemorySampler() as memory:
        subprocess.run(command, check=True, env={**os.environ, **ONE_THREAD})
    return {**json.loads(result.read_text()), "peak_mib": memory.child_peak / 2**20}


def same_uids(curate: dict, plain: dict) -> bool:
    """Whether both sides wrote the same subset file contents."""
    return bool(np.array_equal(np.load(curate["subset"]), np.load(plain["subset"])))


def _main(side: str, pool: str, out: str, result: str, clustering: str) -> None:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    run = run_curate if side == "curate" else run_polars
    figures = run(Path(pool), Path(out), Clustering(**json.loads(clustering)))
    Path(result).write_text(json.dumps(figures))


if __name__ == "__main__":
    _main(*sys.argv[1:])
