"""A data-filtering network trained on trusted shards scores a pool as dfn_score, and a second
train-dfn with the same settings reuses the trained folder."""

from __future__ import annotations

import polars as pl
from typer.testing import CliRunner

from conftest import write_pipeline, write_pool
from curate import load_pipeline, run_pipeline
from curate.cli import app


def test_train_dfn_then_score_a_pool_with_it(tmp_path):
    write_pool(tmp_path / "trusted", shards=2, per_shard=30)
    dfn = tmp_path / "dfn"
    arguments = ["train-dfn", "--data", str(tmp_path / "trusted"), "--out", str(dfn), "--samples-seen", "64",
                 "--batch-size", "16", "--warmup", "1", "--device", "cpu"]
    first = CliRunner().invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "step 4 of 4" in first.output and "name: dfn" in first.output
    weights = dfn / "open_clip_pytorch_model.bin"
    written = weights.stat().st_mtime_ns
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert weights.stat().st_mtime_ns == written  # reused, not trained again

    write_pool(tmp_path / "pool", shards=1, per_shard=20, start=100)
    stages = [{"stage": "clip_score", "params": {"name": "dfn", "weights": str(dfn), "device": "cpu"}},
              {"stage": "select_top_fraction", "params": {"column": "dfn_score", "fraction": 0.5}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run", stages=stages)
    run_pipeline(load_pipeline(pipeline))
    scored = pl.read_parquet(tmp_path / "run" / "clip_score" / "*.parquet", columns=["dfn_score"])["dfn_score"]
    scored = scored.drop_nulls()  # the rows the pool's ingest drops are not scored
    assert scored.len() >= 15 and scored.n_unique() == scored.len()
    dropped = pl.read_parquet(tmp_path / "run" / "dropped.parquet")
    assert dropped.filter(pl.col("drop_reason") == "below_top_fraction").height == scored.len() // 2
