"""End of a run: dropped.parquet, the invariant ingested = curated + dropped, the sink's
subset.npy and run-level files, summary.json. The work is done by tasks of the executor
(see curate.accounting), none of which holds the pool; the driver adds up counts."""

from __future__ import annotations

import shutil
from collections import Counter
from typing import Any

from curate.accounting import (FOLDER, ROW_BYTES, Accounted, RangeCheck, ShardAccount, UnitAccount, write_dropped,
                               write_subset_parts)
from curate.drop_warnings import drop_warnings
from curate.partitions import HASH_BUCKETS, plan_for
from curate.progress import Progress
from curate.run import RunDir, write_json_atomic
from curate.stage import SinkStage
from curate.versions import package_versions

CHECK_PARTITION_BYTES = 1 << 29  # a partition of the check: 8M uids


def finalize_run(run: RunDir, executor, progress: Progress, name: str, deciders: list[str], shards: list[str],
                 reports: list, sink: tuple[SinkStage, Any] | None, partitions: int | None = None) -> dict:
    """Check that every ingested uid is curated (written by the sink when there is one, else
    kept) or dropped, exactly once; write dropped.parquet, the sink's subset and run-level
    files, and summary.json; return the summary."""
    shutil.rmtree(run.root / FOLDER, ignore_errors=True)
    tasks = [ShardAccount(str(run.root), shard, tuple(deciders)) for shard in shards]
    with progress.stage("check (shards)", len(tasks)) as bar:
        accounts = executor.map_shards(None, tasks, None, bar.advance)
    units = None
    if sink:
        units = sink[0].units(sink[1])
        with progress.stage("check (outputs)", len(units)) as bar:
            executor.map_shards(sink[0], [UnitAccount(str(run.root), unit) for unit in units], sink[1], bar.advance)
    ingested_files = [run.root / FOLDER / "ingested" / f"{shard}.parquet" for shard in shards]
    plan = executor.call(plan_for, ingested_files, HASH_BUCKETS, CHECK_PARTITION_BYTES // ROW_BYTES, partitions)
    checks = [RangeCheck(str(run.root), plan.name(p), plan.bounds[p], plan.bounds[p + 1]) for p in range(plan.count)]
    with progress.stage("check (uids)", len(checks)) as bar:
        counts = executor.map_shards(None, checks, Accounted(shards, units), bar.advance)
    curated = sum(count["curated"] for count in counts)
    written = executor.call(_write_outputs, run, shards, sink, [c.name for c in checks], curated)
    shutil.rmtree(run.root / FOLDER, ignore_errors=True)
    reasons = sum((Counter(account["reasons"]) for account in accounts), Counter())
    return _summary(run, name, reports, sum(a["ingested"] for a in accounts), curated, reasons, written)


def _write_outputs(run: RunDir, shards: list[str], sink: tuple[SinkStage, Any] | None, parts: list[str],
                   curated: int) -> dict:
    """dropped.parquet, and the sink's subset file and own run-level files (a task: it streams
    every shard's dropped rows and every part of the subset); the sink's summary."""
    write_dropped(run, shards)
    if not sink:
        return {}
    stage, state = sink
    out_dir = run.stage_dir(stage.id)
    write_subset_parts(out_dir / "subset.npy", [run.root / FOLDER / "subset" / f"{p}.bin" for p in parts], curated)
    return stage.finalize(state, out_dir) | {"subset": str(out_dir / "subset.npy")}


def _summary(run: RunDir, name: str, reports: list, ingested: int, curated: int, reasons: Counter,
             written: dict) -> dict:
    stages = [_report_dict(report) for report in reports]
    intended = {report.stage_id: report.intended_drop_share for report in reports}
    dropped = sum(reasons.values())
    summary = {
        "run_dir": str(run.root),
        "pipeline": name,
        "ingested": ingested,
        "curated": curated,
        "dropped": dropped,
        "dropped_by_reason": dict(sorted(reasons.items())),
        "warnings": drop_warnings(ingested, curated, stages, intended),
        "stages": stages,
        "outputs": {"dropped": str(run.root / "dropped.parquet"), **written},
        "versions": package_versions(),
    }
    write_json_atomic(run.root / "summary.json", summary)
    return summary


def _report_dict(report) -> dict:
    return {
        "stage_id": report.stage_id,
        "stage": report.name,
        "shards": report.shards,
        "reused": report.reused,
        "alive_in": report.alive_in,
        "kept": report.kept,
        "drop_counts": dict(sorted(report.drop_counts.items())),
        "worker_seconds": round(report.worker_seconds, 3),
        "wall_seconds": round(report.wall_seconds, 3),
        **({"phase_seconds": {name: round(value, 3) for name, value in sorted(report.phase_seconds.items())}}
           if report.phase_seconds else {}),
        "warnings": report.warnings,
        **({"details": report.details} if report.details else {}),
    }
