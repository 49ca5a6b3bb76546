"""curate.scan(run): every sidecar of a run joined on uid, as a polars LazyFrame."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.committed import committed_markers, is_finished, run_stages
from curate.errors import InputError
from curate.run import RunDir
from curate.stage import SinkStage

RESERVED = ("uid", "drop_reason")


def scan(run_dir: str | Path, partial: bool = False) -> pl.LazyFrame:
    """All per-shard outputs of a finished run joined on uid.

    Columns: every sidecar column, plus `drop_reason` (the first reason any stage gave),
    `dropped_by` (that stage's id) and `kept`. A column written by several stages is the
    latest one's; earlier ones are suffixed `__<stage id>`. Thresholds are queries: filter
    this frame to try a new selection without recomputing any score.

    An unfinished run (interrupted, or still running) is refused unless partial=True, which
    scans only the shards every stage has committed.
    """
    stages = [(s, cls) for s, cls in run_stages(run_dir) if not issubclass(cls, SinkStage)]
    if not partial and not is_finished(run_dir):
        raise InputError(f"{run_dir} has not finished (interrupted or still running): run the pipeline "
                         f"again to finish it, or scan with partial=True (--partial) for the shards done")
    valid = committed_markers(run_dir)
    shards = sorted(set.intersection(*(set(valid[s]) for s, _ in stages)))
    if not shards:
        raise InputError(f"{run_dir} has no shard that every stage has committed yet")
    parts = [(s, cls, _scan_stage(RunDir(run_dir), s, shards)) for s, cls in stages]
    frame = _join(parts)
    deciders = [s for s, cls, _ in parts if cls.decides]
    reason = pl.coalesce([pl.col(f"drop_reason__{s}") for s in deciders])
    by = pl.lit(None, dtype=pl.String)
    for stage_id in reversed(deciders):
        by = pl.when(pl.col(f"drop_reason__{stage_id}").is_not_null()).then(pl.lit(stage_id)).otherwise(by)
    return frame.with_columns(reason.alias("drop_reason"), by.alias("dropped_by")).with_columns(
        pl.col("drop_reason").is_null().alias("kept")
    )


def _scan_stage(run: RunDir, stage_id: str, shards: list[str]) -> pl.LazyFrame:
    return pl.scan_parquet([str(run.output_path(stage_id, shard)) for shard in shards])


def _join(parts: list[tuple[str, type, pl.LazyFrame]]) -> pl.LazyFrame:
    """Join stage outputs on uid; a repeated column keeps its latest writer's name."""
    frame, owner = None, {}
    for stage_id, cls, part in parts:
        names = part.collect_schema().names()
        if cls.decides:
            part = part.rename({"drop_reason": f"drop_reason__{stage_id}"})
        repeated = [c for c in names if c in owner and c not in RESERVED]
        if frame is not None and repeated:
            frame = frame.rename({c: f"{c}__{owner[c]}" for c in repeated})
        owner.update({c: stage_id for c in names})
        frame = part if frame is None else frame.join(part, on="uid", how="left", maintain_order="left")
    return frame
