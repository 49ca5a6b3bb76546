"""End of a run: dropped.parquet, the invariant ingested = curated + dropped, summary.json."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import InvariantError
from curate.io.subset import first_repeat, uids_to_u8u8
from curate.run import write_json_atomic
from curate.schema import load_schema

if TYPE_CHECKING:
    from curate.pipeline import PipelineRun


def dropped_rows(pr: "PipelineRun", shard: str) -> tuple[pa.Table, pa.Array]:
    """One shard's dropped rows (dropped.v1) and all of its uids."""
    run, deciders = pr.run, [s.id for s in pr.stages if s.decides]
    table = pq.read_table(run.output_path(deciders[0], shard),
                          columns=["uid", "key", "source", "caption", "drop_reason"])
    reason = table.column("drop_reason")
    by = pc.if_else(reason.is_valid(), deciders[0], pa.scalar(None, pa.string()))
    for stage_id in deciders[1:]:
        theirs = pq.read_table(run.output_path(stage_id, shard), columns=["drop_reason"]).column(0)
        by = pc.if_else(pc.and_(by.is_null(), theirs.is_valid()), stage_id, by)
        reason = pc.coalesce(reason, theirs)
    table = table.set_column(4, "drop_reason", reason).append_column("dropped_by", by)
    dropped = table.filter(reason.is_valid())
    return dropped.cast(load_schema("dropped.v1")), table.column("uid")


def write_dropped(pr: "PipelineRun") -> tuple[int, int, Counter, np.ndarray]:
    """Stream every shard's dropped rows into RUN/dropped.parquet; return counts and all uids."""
    path = pr.run.root / "dropped.parquet"
    tmp = path.with_name(".dropped.parquet.tmp")
    reasons: Counter = Counter()
    ingested, all_uids = 0, []
    with pq.ParquetWriter(tmp, load_schema("dropped.v1"), compression="zstd") as writer:
        for shard in pr.shards:
            dropped, uids = dropped_rows(pr, shard)
            writer.write_table(dropped)
            reasons.update(dropped.column("drop_reason").to_pylist())
            ingested += len(uids)
            all_uids.append(uids_to_u8u8(uids.to_pylist()))
    tmp.replace(path)
    pairs = np.concatenate(all_uids) if all_uids else uids_to_u8u8([])
    return ingested, sum(reasons.values()), reasons, pairs


def check_invariant(ingested: int, curated: int, dropped: int, pairs: np.ndarray) -> None:
    """ingested = curated + dropped, and no uid twice; fail loudly otherwise."""
    if ingested != curated + dropped:
        raise InvariantError(
            f"ingested {ingested:,} samples but curated {curated:,} + dropped {dropped:,} = "
            f"{curated + dropped:,}: samples were lost or counted twice"
        )
    repeated = first_repeat(pairs)
    if repeated:
        raise InvariantError(f"uid {repeated} was ingested more than once")


def finalize_run(pr: "PipelineRun") -> dict:
    """Write dropped.parquet and summary.json after checking the invariant; return the summary."""
    ingested, dropped, reasons, pairs = write_dropped(pr)
    curated = ingested - dropped
    if pr.sink_summary is not None and pr.sink_summary["samples"] != curated:
        raise InvariantError(
            f"{curated:,} samples were kept but the export wrote {pr.sink_summary['samples']:,}"
        )
    check_invariant(ingested, curated, dropped, pairs)
    summary = {
        "run_dir": str(pr.run.root),
        "pipeline": pr.config.name,
        "ingested": ingested,
        "curated": curated,
        "dropped": dropped,
        "dropped_by_reason": dict(sorted(reasons.items())),
        "stages": [_report_dict(report) for report in pr.reports],
        "outputs": {"dropped": str(pr.run.root / "dropped.parquet"), **(pr.sink_summary or {})},
    }
    write_json_atomic(pr.run.root / "summary.json", summary)
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
        "warnings": report.warnings,
    }
