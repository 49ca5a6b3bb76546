"""curate.scan (all sidecars of a run as one LazyFrame) and curate.run_status (shards done/total)."""

from __future__ import annotations

import json

import os
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import curate
from curate import InputError, load_pipeline, run_pipeline
from conftest import CAPTIONS, output_files, write_pipeline, write_pool

SHARDS, PER_SHARD = 4, 12
SELECT_ONLY = [
    {"stage": "caption_stats"},
    {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 3"}}},
    {"stage": "export", "params": {"samples_per_shard": 10}},
]


def _words(caption: str) -> int:
    return len(caption.split())


def _run(tmp_path: Path, stages: list[dict] | None = None, name: str = "run") -> tuple[Path, Path, dict]:
    pool = tmp_path / "pool"
    if not pool.exists():
        write_pool(pool, shards=SHARDS, per_shard=PER_SHARD)
    run_dir = tmp_path / name
    pipeline = write_pipeline(tmp_path / f"{name}.yaml", str(pool / "*.tar"), run_dir, stages=stages,
                              samples_per_shard=10)
    return pipeline, run_dir, run_pipeline(load_pipeline(pipeline))


def _snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in run_dir.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- scan


def test_scan_joins_every_sidecar_with_kept_drop_reason_and_dropped_by(tmp_path):
    _, run_dir, summary = _run(tmp_path)  # ingest -> caption_stats -> select -> top fraction -> export
    frame = curate.scan(run_dir)
    assert isinstance(frame, pl.LazyFrame)
    names = frame.collect_schema().names()
    for column in ("uid", "key", "source", "caption", "width", "caption_words", "caption_chars",
                   "kept", "drop_reason", "dropped_by"):
        assert column in names, column

    table = frame.drop("image").collect()
    total = SHARDS * PER_SHARD
    assert table.height == summary["ingested"] == total
    assert table["uid"].n_unique() == total
    assert table["kept"].sum() == summary["curated"]
    assert table.filter(~pl.col("kept")).height == summary["dropped"]
    assert table.schema["kept"] == pl.Boolean

    # every dropped row says why and which stage; kept rows have neither
    kept = table.filter(pl.col("kept"))
    assert kept["drop_reason"].null_count() == kept.height
    assert kept["dropped_by"].null_count() == kept.height
    reasons = dict(table.filter(~pl.col("kept")).group_by("drop_reason").len().iter_rows())
    assert reasons == summary["dropped_by_reason"]
    assert reasons["empty_caption"] == total // len(CAPTIONS)
    by_stage = dict(table.filter(~pl.col("kept")).group_by("dropped_by").len().iter_rows())
    assert by_stage == {"ingest_webdataset": reasons["empty_caption"],
                        "select": reasons["too_few_words"],
                        "select_top_fraction": reasons["below_top_fraction"]}

    # the same verdicts as dropped.parquet, uid by uid
    dropped = pl.read_parquet(run_dir / "dropped.parquet")
    joined = dropped.join(table.select("uid", "drop_reason", "dropped_by", "kept"), on="uid",
                          suffix="_scan", how="left")
    assert joined.height == summary["dropped"]
    assert (joined["drop_reason"] == joined["drop_reason_scan"]).all()
    assert (joined["dropped_by"] == joined["dropped_by_scan"]).all()
    assert not joined["kept"].any()

    # and the kept uids are exactly the exported ones
    exported = pq.read_table(sorted((run_dir / "export" / "shards").glob("*.parquet")), columns=["uid"])
    assert sorted(exported.column("uid").to_pylist()) == sorted(kept["uid"].to_list())

    # scores are joined to the right rows
    for row in table.select("caption", "caption_words").drop_nulls().iter_rows():
        assert row[1] == _words(row[0])


def test_rethreshold_with_a_filter_needs_no_recomputation(tmp_path):
    _, run_dir, summary = _run(tmp_path, stages=SELECT_ONLY)
    before = _snapshot(run_dir)
    frame = curate.scan(run_dir)
    alive_after_ingest = pl.col("drop_reason__ingest_webdataset").is_null()

    counts = {}
    for threshold in (1, 3, 6, 8):
        counts[threshold] = frame.filter(alive_after_ingest & (pl.col("caption_words") >= threshold)) \
            .select(pl.len()).collect().item()
    per_cycle = SHARDS * PER_SHARD // len(CAPTIONS)
    for threshold, count in counts.items():
        expected = sum(1 for c in CAPTIONS if c and _words(c) >= threshold) * per_cycle
        assert count == expected, threshold
    assert counts[3] == summary["curated"], "the pipeline's own threshold reproduces its result"
    assert counts[1] > counts[3] > counts[6] > counts[8] == 0

    # SQL predicates, as `select` and `curate scan --where` take them, work the same way
    sql = frame.filter(pl.col("kept") & pl.sql_expr("caption_words >= 6")).select(pl.len()).collect().item()
    assert sql == counts[6]

    assert _snapshot(run_dir) == before, "scanning must not write or rewrite anything"


def test_scan_of_a_directory_that_is_not_a_run_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a run directory"):
        curate.scan(tmp_path)


def test_scan_ignores_outputs_of_inputs_no_longer_in_the_run(tmp_path):
    pipeline, run_dir, first = _run(tmp_path, stages=SELECT_ONLY)
    (tmp_path / "pool" / f"pool-{SHARDS - 1:05d}.tar").unlink()
    second = run_pipeline(load_pipeline(pipeline))
    assert second["ingested"] == (SHARDS - 1) * PER_SHARD
    table = curate.scan(run_dir).select("uid", "kept").collect()
    assert table.height == second["ingested"]
    assert table["kept"].sum() == second["curated"]


# ---------------------------------------------------------------- status


def test_status_of_a_finished_run(tmp_path):
    _, run_dir, summary = _run(tmp_path)
    status = curate.run_status(run_dir)
    assert [row["stage"] for row in status] == [s["stage_id"] for s in summary["stages"]] == [
        "ingest_webdataset", "caption_stats", "select", "select_top_fraction", "export"]
    for row, stage in zip(status, summary["stages"]):
        assert row["shards_done"] == row["shards_total"] == stage["shards"], row
        assert row["alive_in"] == stage["alive_in"], row
        assert row["dropped"] == sum(stage["drop_counts"].values()), row
    assert status[0]["shards_total"] == SHARDS
    assert status[0]["rows"] == summary["ingested"]
    assert status[-1]["shards_total"] == summary["outputs"]["shard_count"]
    assert status[-1]["rows"] == summary["curated"]


def test_status_of_a_partial_run_and_rerun_redoes_exactly_the_missing_shards(tmp_path):
    pipeline, run_dir, first = _run(tmp_path)
    reference = output_files(run_dir)
    markers = sorted((run_dir / "select" / "_done").glob("*.json"))
    assert [m.stem for m in markers] == [f"pool-{i:05d}" for i in range(SHARDS)]
    removed = [markers[1].stem, markers[3].stem]
    for shard in removed:
        (run_dir / "select" / "_done" / f"{shard}.json").unlink()
    export_markers = sorted((run_dir / "export" / "_done").glob("*.json"))
    assert len(export_markers) >= 2
    export_markers[0].unlink()

    status = {row["stage"]: row for row in curate.run_status(run_dir)}
    assert (status["select"]["shards_done"], status["select"]["shards_total"]) == (SHARDS - 2, SHARDS)
    assert (status["export"]["shards_done"], status["export"]["shards_total"]) == (
        len(export_markers) - 1, len(export_markers))
    for stage in ("ingest_webdataset", "caption_stats"):
        assert status[stage]["shards_done"] == status[stage]["shards_total"] == SHARDS, stage
    # a shard computed from an output that is no longer vouched for does not count as done
    assert status["select_top_fraction"]["shards_done"] == SHARDS - 2
    # rows and drops count only committed shards
    per_shard = [pq.read_metadata(run_dir / "select" / f"{m.stem}.parquet").num_rows for m in markers]
    assert status["select"]["rows"] == sum(n for m, n in zip(markers, per_shard) if m.stem not in removed)
    assert status["select"]["dropped"] < next(s for s in first["stages"] if s["stage_id"] == "select")[
        "drop_counts"]["too_few_words"]

    inodes = {p.stem: p.stat().st_ino for p in (run_dir / "select").glob("*.parquet")}
    second = run_pipeline(load_pipeline(pipeline))
    stages = {s["stage_id"]: s for s in second["stages"]}
    assert (stages["select"]["shards"], stages["select"]["reused"]) == (SHARDS, SHARDS - 2)
    assert (stages["export"]["shards"], stages["export"]["reused"]) == (
        len(export_markers), len(export_markers) - 1)
    for stage in ("ingest_webdataset", "caption_stats", "select_top_fraction"):
        assert stages[stage]["reused"] == stages[stage]["shards"] == SHARDS, stage
    # exactly the shards whose markers were removed were rewritten (new file, new inode)
    rewritten = {p.stem for p in (run_dir / "select").glob("*.parquet") if p.stat().st_ino != inodes[p.stem]}
    assert rewritten == set(removed)

    assert output_files(run_dir) == reference
    assert second["curated"] == first["curated"] and second["dropped"] == first["dropped"]
    status = curate.run_status(run_dir)
    assert all(row["shards_done"] == row["shards_total"] for row in status)


def test_status_counts_only_markers_of_the_current_configuration(tmp_path):
    pipeline, run_dir, _ = _run(tmp_path, stages=SELECT_ONLY)
    # a marker written under another configuration does not count as done
    marker = sorted((run_dir / "caption_stats" / "_done").glob("*.json"))[0]
    marker.write_text(marker.read_text().replace('"config_hash": "', '"config_hash": "stale'))
    status = {row["stage"]: row for row in curate.run_status(run_dir)}
    assert (status["caption_stats"]["shards_done"], status["caption_stats"]["shards_total"]) == (
        SHARDS - 1, SHARDS)


def test_a_marker_without_its_files_is_not_committed_for_status_scan_or_the_pipeline(tmp_path):
    pipeline, run_dir, first = _run(tmp_path, stages=SELECT_ONLY)
    marker = sorted((run_dir / "caption_stats" / "_done").glob("*.json"))[0]
    damaged = json.loads(marker.read_text())
    del damaged["files"]
    marker.write_text(json.dumps(damaged))
    status = {row["stage"]: row for row in curate.run_status(run_dir)}
    assert (status["caption_stats"]["shards_done"], status["caption_stats"]["shards_total"]) == (
        SHARDS - 1, SHARDS)
    assert curate.scan(run_dir).collect().height < first["ingested"]
    again = run_pipeline(load_pipeline(pipeline))
    caption_stats = next(s for s in again["stages"] if s["stage_id"] == "caption_stats")
    assert (caption_stats["shards"], caption_stats["reused"]) == (SHARDS, SHARDS - 1)


def test_status_of_a_directory_that_is_not_a_run_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a run directory"):
        curate.run_status(tmp_path / "nothing-here")


def test_scan_reflects_a_new_threshold_after_rerunning_only_select(tmp_path):
    pipeline, run_dir, first = _run(tmp_path, stages=SELECT_ONLY)
    stricter = [dict(SELECT_ONLY[0]),
                {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 6"}}},
                dict(SELECT_ONLY[2])]
    write_pipeline(pipeline, str(tmp_path / "pool" / "*.tar"), run_dir, stages=stricter, samples_per_shard=10)
    second = run_pipeline(load_pipeline(pipeline), force=True)
    stages = {s["stage_id"]: s for s in second["stages"]}
    assert stages["ingest_webdataset"]["reused"] == stages["caption_stats"]["reused"] == SHARDS
    assert stages["select"]["reused"] == 0
    predicted = curate.scan(run_dir).filter(
        pl.col("drop_reason__ingest_webdataset").is_null() & (pl.col("caption_words") >= 6))
    frame = curate.scan(run_dir)
    assert frame.filter(pl.col("kept")).select(pl.len()).collect().item() == second["curated"]
    assert predicted.select(pl.len()).collect().item() == second["curated"] < first["curated"]
    assert os.path.exists(run_dir / "dropped.parquet")


def test_an_interrupted_run_is_refused_and_its_stale_shards_left_out(tmp_path):
    from curate.executors import LocalExecutor
    from curate.pipeline import PipelineRun

    pipeline, run_dir, _ = _run(tmp_path, stages=SELECT_ONLY)
    write_pool(tmp_path / "other", shards=1, per_shard=PER_SHARD, start=900)
    (tmp_path / "other" / "pool-00000.tar").replace(tmp_path / "pool" / "pool-00001.tar")
    interrupted = PipelineRun(load_pipeline(pipeline), LocalExecutor())
    (run_dir / "summary.json").unlink()  # what a rerun does first
    with interrupted.executor:
        interrupted._run_stage(0, interrupted.stages[0])  # ingest redoes pool-00001, then it stops

    with pytest.raises(InputError, match="has not finished"):
        curate.scan(run_dir)
    frame = curate.scan(run_dir, partial=True).collect()
    assert frame.height == (SHARDS - 1) * PER_SHARD
    assert not frame.filter(pl.col("key") >= "000900").height  # the new shard's scores do not exist yet
    status = {row["stage"]: row["shards_done"] for row in curate.run_status(run_dir)}
    assert status == {"ingest_webdataset": SHARDS, "caption_stats": SHARDS - 1, "select": SHARDS - 1,
                      "export": status["export"]}


def test_a_column_written_by_several_stages_keeps_the_latest(tmp_path):
    stages = [{"stage": "caption_stats", "id": f"stats_{n}"} for n in range(3)] + [
        {"stage": "select", "params": {"filters": {"few": "caption_words >= 3"}}}]
    _, run_dir, summary = _run(tmp_path, stages=stages)
    names = curate.scan(run_dir).collect_schema().names()
    assert "caption_words" in names and "caption_words__stats_0" in names and "caption_words__stats_1" in names
    assert curate.scan(run_dir).filter(pl.col("kept")).collect().height == summary["curated"]
