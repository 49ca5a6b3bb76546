"""A metadata-only run (DataComp's Parquet + npz): stages that need pixels are refused by name
before anything runs; the rest runs end to end, report and dataset card included."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from curate import ConfigError
from curate.config import PipelineConfig
from curate.io.subset import u8u8_to_uids
from curate.pipeline import run_pipeline
from curate.report import write_report


def _config(pool, run_dir, *middle: dict, sink: str = "export_subset") -> PipelineConfig:
    return PipelineConfig(name="metadata-only", run_dir=str(run_dir), executor={"kind": "local"}, stages=[
        {"stage": "ingest_datacomp", "params": {"inputs": str(pool / "metadata" / "*.parquet")}},
        *middle, {"stage": sink}])


@pytest.mark.parametrize("stage, sink", [("clip_score", "export_subset"), ("nsfw_score", "export_subset"),
                                         (None, "export")])
def test_a_stage_that_needs_pixels_is_refused_by_name_before_anything_runs(datacomp_pool, tmp_path, stage, sink):
    middle = [{"stage": stage}] if stage else []
    with pytest.raises(ConfigError, match=f"stage '{stage or sink}' needs the images.*metadata-only"):
        run_pipeline(_config(datacomp_pool, tmp_path / "run", *middle, sink=sink))
    assert not (tmp_path / "run" / "ingest_datacomp").exists()


def test_column_stages_run_and_the_subset_matches_the_curated_metadata(datacomp_pool, tmp_path):
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(
        datacomp_pool, run_dir,
        {"stage": "select", "params": {"filters": {"faces": "array_length(face_bboxes) = 0"}}},
        {"stage": "semdedup", "params": {"embedding": "l14_img", "clusters": 4, "eps": 0.03}},
        {"stage": "select_top_fraction", "params": {"column": "clip_b32_similarity_score", "fraction": 0.5}}))
    curated = pl.read_parquet(run_dir / "export_subset" / "metadata" / "*.parquet")
    subset = np.load(run_dir / "export_subset" / "subset.npy")
    assert sorted(u8u8_to_uids(subset)) == sorted(curated["uid"]) and summary["curated"] == len(subset)
    assert "l14_img" not in curated.columns and "clip_l14_similarity_score" in curated.columns
    assert curated["face_bboxes"].list.len().max() == 0
    written = write_report(run_dir)
    card = written.card.read_text()
    assert "No images: the run was metadata-only" in card and "WebDataset shards" not in card
    assert "resharder.py -i POOL_SHARDS" in card and "open_clip_train" not in card
    assert "<html" in written.report.read_text()[:200].lower()


def test_exact_duplicates_are_found_by_the_pools_own_sha256(datacomp_pool, tmp_path):
    summary = run_pipeline(_config(datacomp_pool, tmp_path / "run", {"stage": "dedup_exact"}))
    pool = pl.read_parquet(datacomp_pool / "metadata" / "*.parquet")
    assert summary["curated"] == pool["sha256"].n_unique() < pool.height
