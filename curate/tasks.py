"""The work units executors run on workers: one per shard (or output unit) and phase.

Each task writes its outputs atomically and its commit marker last, and returns the marker.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import SchemaError
from curate.partitions import (BUCKETS, REDUCED, available_memory, bucketed, check_fits, read_partition,
                               single_threaded)
from curate.run import RunDir, sha256_hex, stable_hash, write_parquet_atomic
from curate.schema import validate
from curate.stage import PartitionedStage, ShardSpec
from curate.view import BORROWED, ViewPlan

_ROWS_PER_CHUNK = 1024
# The phases of a stage's work, each a folder of commit markers: a global stage collects per
# shard, a partitioned one buckets and reduces per partition, and every stage's output is _done.
DONE, COLLECT = "_done", "_collect"
PHASES = {COLLECT: "collect", BUCKETS: "bucket", REDUCED: "reduce", DONE: "output"}


class Clock:
    """When a task began, and its stage's phase seconds then (see Stage.phase): what the task's
    marker reports as its seconds and the seconds of each phase the stage timed in it."""

    def __init__(self, stage) -> None:
        self.stage, self.started, self.before = stage, time.perf_counter(), dict(stage.seconds)

    def figures(self) -> dict:
        """{"seconds": since the task began, "phases": {phase: seconds} when the stage timed any}."""
        phases = self.stage.phases_since(self.before)
        return {"seconds": round(time.perf_counter() - self.started, 4), **({"phases": phases} if phases else {})}


@dataclass(frozen=True)
class TaskBase:
    """What every task knows: where the run is, which shard, and what it must match."""

    run_root: str
    shard: str
    config_hash: str
    fingerprint: str
    upstream: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)

    def _marker(self, started: Clock, **fields) -> dict:
        """The commit marker: what was written, what it was written from, and the task's time."""
        return {"shard": self.shard, "input_fingerprint": self.fingerprint,
                "config_hash": self.config_hash, "upstream": [list(pair) for pair in self.upstream],
                **started.figures(), **fields}

    def _commit(self, stage, table: pa.Table, view: pa.Table | None, started: Clock,
                borrowed: dict | None = None, **extra) -> dict:
        table = validate(table, stage.stored_schema(), stage.id)
        if view is not None:
            table = _only_new_drops(table, view)
        if borrowed:
            table = table.replace_schema_metadata({**table.schema.metadata, BORROWED: json.dumps(borrowed, sort_keys=True)})
        run = RunDir(self.run_root)
        path = run.output_path(stage.id, self.shard)
        digest = write_parquet_atomic(path, table)
        marker = self._marker(started, files=[run.relative(path)], rows=table.num_rows,
                              alive_in=_alive(view) if view is not None else table.num_rows,
                              drop_counts=_drop_counts(table, stage.decides),
                              output_sha256=digest, **extra)
        run.commit(stage.id, self.shard, marker)
        return marker


@dataclass(frozen=True)
class SourceTask(TaskBase):
    """Read one input shard into sample.v1 rows."""

    spec: ShardSpec

    def __call__(self, stage, shared: Any) -> dict:
        started = Clock(stage)
        warnings: list[str] = []
        table = stage.read_shard_table(self.spec, warnings)
        if table is None:
            table = _from_rows(stage, stage.read_shard(self.spec, warnings))
        return self._commit(stage, _drop_repeated_uids(table), None, started,
                            borrowed=stage.borrowed_files(self.spec), warnings=warnings)


@dataclass(frozen=True)
class ShardTask(TaskBase):
    """Run a ShardStage over every record batch of one shard's view."""

    view: ViewPlan

    def __call__(self, stage, shared: Any) -> dict:
        started = Clock(stage)
        view = self.view.read(self.shard)
        batches = view.to_batches(max_chunksize=stage.batch_size) or [pa.RecordBatch.from_pylist([], schema=view.schema)]
        parts = [_as_table(stage.process(batch)) for batch in batches]
        table = _same_rows(view, pa.concat_tables(parts), stage.id)
        return self._commit(stage, table, view, started)


@dataclass(frozen=True)
class CollectTask(TaskBase):
    """Phase 1 of a global stage: a small per-shard summary, kept for reruns."""

    view: ViewPlan

    def __call__(self, stage, shared: Any) -> dict:
        started = Clock(stage)
        summary = _as_table(stage.collect(self.view.read(self.shard)))
        if isinstance(stage, PartitionedStage) and not stage.buckets_need_prepare:
            summary = bucketed(stage, summary, None)
        return _commit_phase(RunDir(self.run_root).collect_path(stage.id, self.shard), summary, stage, self, started)


@dataclass(frozen=True)
class BucketTask(TaskBase):
    """Between prepare and the partitions' reduce: a shard's collected rows with their buckets
    (which came from the prepared state), in bucket order."""

    def __call__(self, stage, prepared: Any) -> dict:
        started = Clock(stage)
        run = RunDir(self.run_root)
        table = bucketed(stage, pq.read_table(run.collect_path(stage.id, self.shard)), prepared)
        return _commit_phase(run.phase_path(stage.id, BUCKETS, self.shard), table, stage, self, started)


@dataclass(frozen=True)
class PartitionInputs:
    """What every partition task of a stage shares, sent once: the prepared state, and each
    shard's bucketed rows (shard -> path)."""

    prepared: Any
    shards: dict[str, str]


@dataclass(frozen=True)
class PartitionTask(TaskBase):
    """Phase 2 of a partitioned stage: reduce one partition (self.shard names it), the rows of
    buckets low..high-1 read from every shard's bucketed rows."""

    low: int
    high: int
    rows: int

    def __call__(self, stage, inputs: PartitionInputs) -> dict:
        started = Clock(stage)
        run, prepared = RunDir(self.run_root), inputs.prepared
        check_fits(stage.id, self.shard, self.rows, stage.row_bytes(prepared), available_memory(stage))
        rows = read_partition({shard: Path(path) for shard, path in inputs.shards.items()}, self.low, self.high)
        with single_threaded():
            result = stage.reduce_partition(rows, prepared, run.stage_dir(stage.id) / "report", self.shard)
        files = [run.relative(Path(path)) for path in result["files"]]
        marker = self._marker(started, rows=rows.num_rows, result=result, files=files,
                              output_sha256=stable_hash(result))
        run.commit(stage.id, self.shard, marker, phase=REDUCED)
        return marker


def _commit_phase(path: Path, table: pa.Table, stage, task: TaskBase, started: Clock) -> dict:
    """Write a per-shard table of a reduce's preparation (collected, bucketed) and its marker."""
    run = RunDir(task.run_root)
    digest = write_parquet_atomic(path, table)
    marker = task._marker(started, files=[run.relative(path)], rows=table.num_rows, output_sha256=digest)
    run.commit(stage.id, task.shard, marker, phase=path.parent.name)
    return marker


@dataclass(frozen=True)
class ApplyTask(TaskBase):
    """Phase 3 of a global stage: the per-shard output given the reduced state (shared)."""

    view: ViewPlan

    def __call__(self, stage, shared: Any) -> dict:
        started = Clock(stage)
        view = self.view.read(self.shard)
        table = _same_rows(view, _as_table(stage.apply(view, shared, self.shard)), stage.id)
        return self._commit(stage, table, view, started)


@dataclass(frozen=True)
class SinkTask(TaskBase):
    """The apply phase of a sink: write one output unit (self.shard names the unit)."""

    view: ViewPlan

    def __call__(self, stage, shared: Any) -> dict:
        started = Clock(stage)
        run = RunDir(self.run_root)
        out_dir = run.stage_dir(stage.id)
        written = stage.write_unit(self.shard, shared, out_dir, self.view)
        files = [run.relative(out_dir / name) for name in written.pop("files")]
        marker = self._marker(started, files=files, **written)
        run.commit(stage.id, self.shard, marker)
        return marker


def _from_rows(stage, rows) -> pa.Table:
    """The rows a source yields, as a table of its schema, built a chunk at a time."""
    chunks, chunk = [], []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _ROWS_PER_CHUNK:
            chunks.append(pa.Table.from_pylist(chunk, schema=stage.schema()))
            chunk = []
    chunks.append(pa.Table.from_pylist(chunk, schema=stage.schema()))
    return pa.concat_tables(chunks)


def _as_table(result: pa.Table | pa.RecordBatch) -> pa.Table:
    return pa.Table.from_batches([result]) if isinstance(result, pa.RecordBatch) else result


def _alive(view: pa.Table) -> int:
    return view.column("drop_reason").null_count


def _same_rows(view: pa.Table, table: pa.Table, stage_id: str) -> pa.Table:
    """A stage must return every row of its view, in order, keyed by the same uids."""
    if "uid" not in table.column_names or not table.column("uid").cast(pa.string()).equals(view.column("uid")):
        raise SchemaError(
            f"stage {stage_id!r} must return one row per input row, in input order, with the "
            f"input's uid column ({view.num_rows} rows in, {table.num_rows} out)"
        )
    return table


def _only_new_drops(table: pa.Table, view: pa.Table) -> pa.Table:
    """A row dropped by an earlier stage keeps that stage's reason: this one records none."""
    if "drop_reason" not in table.column_names:
        return table
    earlier = view.column("drop_reason").is_valid()
    if not earlier.to_numpy().any():
        return table
    index = table.column_names.index("drop_reason")
    mine = pc.if_else(earlier, pa.scalar(None, pa.string()), table.column(index))
    return table.set_column(index, "drop_reason", mine)


def _drop_repeated_uids(table: pa.Table) -> pa.Table:
    """A second item with the same source key (a tar that repeats a key) is kept as a row, under
    a uid of its own derived from the first's, and dropped as duplicate_key."""
    if pc.count_distinct(table.column("uid")).as_py() == table.num_rows:
        return table
    uids = table.column("uid").to_pylist()
    seen: Counter = Counter()
    reasons = table.column("drop_reason").to_pylist()
    for index, uid in enumerate(uids):
        seen[uid] += 1
        if seen[uid] > 1:
            uids[index] = sha256_hex(f"{uid}#{seen[uid]}")[:32]
            reasons[index] = "duplicate_key"
    table = table.set_column(table.column_names.index("uid"), "uid", pa.array(uids, pa.string()))
    return table.set_column(table.column_names.index("drop_reason"), "drop_reason", pa.array(reasons, pa.string()))


def _drop_counts(table: pa.Table, decides: bool) -> dict[str, int]:
    if not decides:
        return {}
    reasons = table.column("drop_reason").drop_null().to_pylist()
    return dict(sorted(Counter(reasons).items()))
