"""End of a run: dropped.parquet, the invariant ingested = curated + dropped, summary.json."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.drop_warnings import drop_warnings
from curate.errors import InvariantError
from curate.io.subset import first_repeat, sorted_pairs, u8u8_to_uids, uids_to_u8u8
from curate.run import RunDir, write_json_atomic
from curate.schema import load_schema
from curate.stage import SinkStage
from curate.versions import package_versions
from curate.view import first_reason


@dataclass
class RunUids:
    """Every ingested uid and every dropped one, as u8,u8 pairs (16 bytes a sample)."""

    ingested: np.ndarray
    dropped: np.ndarray
    reasons: Counter

    @property
    def kept(self) -> np.ndarray:
        """The ingested uids that no stage dropped."""
        return np.setdiff1d(self.ingested, self.dropped)


def dropped_rows(run: RunDir, deciders: list[str], shard: str) -> tuple[pa.Table, pa.Table]:
    """One shard's dropped rows (dropped.v1), and all its rows with their drop_reason."""
    table = pq.read_table(run.output_path(deciders[0], shard),
                          columns=["uid", "key", "source", "caption", "drop_reason"])
    reasons = [(deciders[0], table.column("drop_reason"))]
    for stage_id in deciders[1:]:
        reasons.append((stage_id, pq.read_table(run.output_path(stage_id, shard), columns=["drop_reason"]).column(0)))
    reason, by = first_reason(reasons)
    table = table.set_column(4, "drop_reason", reason).append_column("dropped_by", by)
    return table.filter(reason.is_valid()).cast(load_schema("dropped.v1")), table


def write_dropped(run: RunDir, deciders: list[str], shards: list[str]) -> RunUids:
    """Stream every shard's dropped rows into RUN/dropped.parquet; return the run's uids."""
    path = run.root / "dropped.parquet"
    tmp = path.with_name(".dropped.parquet.tmp")
    reasons: Counter = Counter()
    ingested, dropped = [], []
    repeated = ["source", "drop_reason", "dropped_by"]  # uids, keys, captions: a dictionary never pays
    with pq.ParquetWriter(tmp, load_schema("dropped.v1"), compression="zstd", use_dictionary=repeated,
                          write_statistics=repeated) as writer:
        for shard in shards:
            rows, everything = dropped_rows(run, deciders, shard)
            writer.write_table(rows)
            reasons.update(rows.column("drop_reason").to_pylist())
            ingested.append(uids_to_u8u8(everything.column("uid").to_pylist()))
            dropped.append(uids_to_u8u8(rows.column("uid").to_pylist()))
    tmp.replace(path)
    return RunUids(*(np.concatenate(parts) if parts else uids_to_u8u8([]) for parts in (ingested, dropped)), reasons)


def check_invariant(ingested: np.ndarray, curated: np.ndarray, dropped: np.ndarray) -> None:
    """Every ingested uid is curated or dropped, exactly once; fail loudly otherwise."""
    ordered, accounted = sorted_pairs(ingested), sorted_pairs(np.concatenate([curated, dropped]))
    if np.array_equal(ordered, accounted) and not (ordered[1:] == ordered[:-1]).any():
        return  # the two sorts prove it; only a failure needs the checks below, to name a uid
    for name, pairs in (("ingested", ingested), ("curated", curated), ("dropped", dropped)):
        repeated = first_repeat(pairs)
        if repeated:
            raise InvariantError(f"uid {repeated} was {name} more than once")
    both = np.intersect1d(curated, dropped)
    if len(both):
        raise InvariantError(f"uid {u8u8_to_uids(both[:1])[0]} is both curated and dropped")
    if len(ingested) != len(curated) + len(dropped):
        raise InvariantError(
            f"ingested {len(ingested):,} samples but curated {len(curated):,} + dropped "
            f"{len(dropped):,} = {len(curated) + len(dropped):,}: samples were lost or invented"
        )
    stray = np.setdiff1d(np.concatenate([curated, dropped]), ingested)
    if len(stray):
        raise InvariantError(f"uid {u8u8_to_uids(stray[:1])[0]} was curated or dropped but never ingested")


def finalize_run(run: RunDir, name: str, deciders: list[str], shards: list[str], reports: list,
                 sink: tuple[SinkStage, Any] | None) -> dict:
    """Finalize the sink (its stage and state), if any; write dropped.parquet and summary.json
    after checking the invariant; return the summary. It holds 16 bytes a sample: the pipeline
    runs it as a task of the executor.

    The curated set is what the sink wrote when there is one, else every sample still kept.
    """
    written = sink[0].finalize(sink[1], run.stage_dir(sink[0].id)) if sink else None
    uids = write_dropped(run, deciders, shards)
    curated = uids.kept if written is None else written.uids
    check_invariant(uids.ingested, curated, uids.dropped)
    stages = [_report_dict(report) for report in reports]
    intended = {report.stage_id: report.intended_drop_share for report in reports}
    summary = {
        "run_dir": str(run.root),
        "pipeline": name,
        "ingested": len(uids.ingested),
        "curated": len(curated),
        "dropped": len(uids.dropped),
        "dropped_by_reason": dict(sorted(uids.reasons.items())),
        "warnings": drop_warnings(len(uids.ingested), len(curated), stages, intended),
        "stages": stages,
        "outputs": {"dropped": str(run.root / "dropped.parquet"), **(written.summary if written else {})},
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
        "warnings": report.warnings,
        **({"details": report.details} if report.details else {}),
    }
