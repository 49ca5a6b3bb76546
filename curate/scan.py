"""curate.scan(run): every sidecar of a run joined on uid, as a polars LazyFrame."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from curate.errors import InputError
from curate.run import RunDir
from curate.stage import SinkStage, stage_class


def run_stages(run_dir: str | Path) -> list[tuple[str, type]]:
    """(stage id, stage class) of the pipeline last run in run_dir, in order."""
    path = Path(run_dir) / "pipeline.yaml"
    if not path.exists():
        raise InputError(f"{run_dir} is not a run directory (no pipeline.yaml); run `curate run` first")
    entries = yaml.safe_load(path.read_text())["stages"]
    return [(entry.get("id") or entry["stage"], stage_class(entry["stage"])) for entry in entries]


def scan(run_dir: str | Path) -> pl.LazyFrame:
    """All per-shard outputs of a run joined on uid.

    Columns: every sidecar column, plus `drop_reason` (the first reason any stage gave),
    `dropped_by` (that stage's id) and `kept`. Thresholds are queries: filter this frame to
    try a new selection without recomputing any score.
    """
    run = RunDir(run_dir)
    frame, deciders = None, []
    for stage_id, cls in run_stages(run_dir):
        if issubclass(cls, SinkStage) or not any(run.stage_dir(stage_id).glob("*.parquet")):
            continue
        part = pl.scan_parquet(str(run.stage_dir(stage_id) / "*.parquet"))
        if cls.decides:
            part = part.rename({"drop_reason": f"drop_reason__{stage_id}"})
            deciders.append(stage_id)
        frame = part if frame is None else frame.join(part, on="uid", how="left", maintain_order="left")
    if frame is None:
        raise InputError(f"{run_dir} has no committed outputs yet")
    reason = pl.coalesce([pl.col(f"drop_reason__{s}") for s in deciders])
    by = pl.lit(None, dtype=pl.String)
    for stage_id in reversed(deciders):
        by = pl.when(pl.col(f"drop_reason__{stage_id}").is_not_null()).then(pl.lit(stage_id)).otherwise(by)
    return frame.with_columns(reason.alias("drop_reason"), by.alias("dropped_by")).with_columns(
        pl.col("drop_reason").is_null().alias("kept")
    )
