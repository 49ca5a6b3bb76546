"""Partitioned reduces: a global stage's collected rows spread over P partitions that P tasks
reduce side by side, so that no task, and not the driver, holds the pool.

Every collected row has a bucket, an integer in [0, B): a prefix of the hash the stage groups
on, or a k-means cluster. Rows of one bucket are always reduced together. A partition is a run
of consecutive buckets, cut where the running row count passes a multiple of total / P: a
bucket is never split, so what a stage finds does not depend on P, only how it is spread. Each
shard's collected rows are stored sorted by bucket, so a partition's task reads, from every
shard, only the row groups of its buckets (Parquet statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import ResourceError

BUCKET = "bucket"
SHARD = "shard"
ROW = "row"  # buckets() may list a collected row in several buckets: its index, once per bucket
BUCKETS = "_bucket"  # the phase folder of bucketed rows, when buckets come from the prepared state
REDUCED = "_reduce"  # the phase folder of the partitions' markers
HASH_BUCKETS = 1 << 16  # buckets of a hash-prefix partitioning: 16 bits, enough for 10^4 partitions
_BYTES_PER_ROW_OVERHEAD = 64  # Arrow and numpy working copies, beyond the stored bytes


def hex_prefix_buckets(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Buckets from hex digests (a sha256, a uid; text or bytes, either case): the value of their
    first four hex digits, so equal digests share a bucket and buckets are spread evenly (a shorter
    value is read as if padded with zeros)."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    array = pc.fill_null(pc.binary_slice(array.cast(pa.binary()), 0, 4), b"")
    padded = np.array(array.to_numpy(zero_copy_only=False), dtype="S4")
    digits = _HEX_VALUE[np.frombuffer(padded.tobytes(), np.uint8).reshape(-1, 4)].astype(np.int32)
    return (digits[:, 0] << 12) | (digits[:, 1] << 8) | (digits[:, 2] << 4) | digits[:, 3]


_HEX_VALUE = np.zeros(256, np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def bucketed(stage, rows: pa.Table, prepared: dict | None) -> pa.Table:
    """A stage's collected rows with their bucket and the columns its buckets() adds, in bucket
    order (stable: collect order is kept within a bucket), as a partition reads them; a row
    that buckets() lists in several buckets (a ROW column) is copied into each."""
    with single_threaded():
        added = stage.buckets(rows, prepared)
    if ROW in added.column_names:  # rows listed in several buckets (an inverted file's probes)
        rows, added = rows.take(added.column(ROW)), added.drop_columns([ROW])
    buckets = added.column(BUCKET).to_numpy()
    for name in added.column_names:
        if name != BUCKET:
            rows = rows.append_column(name, added.column(name))
    order = pa.array(np.argsort(buckets, kind="stable"))
    return rows.take(order).append_column(BUCKET, pa.array(buckets, pa.int32()).take(order))


@dataclass(frozen=True)
class PartitionPlan:
    """Partition p holds buckets bounds[p] to bounds[p + 1] - 1, rows[p] rows in all."""

    bounds: list[int]
    rows: list[int]
    largest_bucket: int

    @property
    def count(self) -> int:
        """P, the partitions that hold any row (at least one)."""
        return len(self.rows)

    def name(self, index: int) -> str:
        """The unit name of partition `index` (its markers and files are named so)."""
        return f"part-{index:05d}"


def plan_partitions(sizes: np.ndarray, partitions: int) -> PartitionPlan:
    """Cut B bucket sizes into at most `partitions` runs of consecutive buckets of about equal
    rows; runs without rows are left out (one empty partition remains when there are none)."""
    total = int(sizes.sum())
    cumulative = np.cumsum(sizes)
    targets = total * np.arange(1, partitions) / partitions
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 0, len(sizes)), [len(sizes)]]))
    rows = np.add.reduceat(sizes, bounds[:-1]) if len(sizes) else np.zeros(1, np.int64)
    keep = np.flatnonzero(rows > 0) if total else np.array([0])
    starts = bounds[:-1][keep]
    starts[0] = 0  # empty runs join the next partition: every bucket belongs to one
    return PartitionPlan([int(b) for b in np.append(starts, len(sizes))], [int(r) for r in rows[keep]],
                         int(sizes.max(initial=0)))


def partition_count(rows: int, target_rows: int, override: int | None) -> int:
    """P: the stage's own setting, else enough partitions of target_rows for every row."""
    return max(1, override or math.ceil(rows / max(1, target_rows)))


def bucket_sizes(paths: list[Path], bucket_count: int) -> np.ndarray:
    """Rows per bucket over every shard's collected rows, read a bucket column at a time."""
    sizes = np.zeros(bucket_count, np.int64)
    for path in paths:
        buckets = pq.read_table(path, columns=[BUCKET]).column(0).to_numpy()
        sizes += np.bincount(buckets, minlength=bucket_count)[:bucket_count]
    return sizes


def plan_for(paths: list[Path], bucket_count: int, target_rows: int, override: int | None) -> PartitionPlan:
    """The partition plan of a stage's collected rows (run as a task: it reads every shard's
    bucket column, one at a time, and holds B sizes)."""
    sizes = bucket_sizes(paths, bucket_count)
    return plan_partitions(sizes, partition_count(int(sizes.sum()), target_rows, override))


def read_partition(shards: dict[str, Path], low: int, high: int) -> pa.Table:
    """The rows of buckets low..high-1 from every shard (shard -> collected file), in shard
    order, with a shard column."""
    parts = []
    for shard, path in shards.items():
        table = _read_buckets(path, low, high)
        if table.num_rows:
            parts.append(table.append_column(SHARD, pa.array([shard] * table.num_rows, pa.string())))
    if not parts:
        schema = pq.read_schema(next(iter(shards.values()))) if shards else pa.schema([(BUCKET, pa.int32())])
        return schema.empty_table().append_column(SHARD, pa.array([], pa.string()))
    return pa.concat_tables(parts)


def _read_buckets(path: Path, low: int, high: int) -> pa.Table:
    """One file's rows of buckets low..high-1, reading only the row groups whose statistics
    overlap them: every partition reads every shard, so this per-file cost is paid shards x P
    times (a dataset scan with a filter costs four times as much per file)."""
    handle = pq.ParquetFile(path)
    column = handle.schema_arrow.get_field_index(BUCKET)
    groups = []
    for index in range(handle.metadata.num_row_groups):
        stats = handle.metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or (stats.max >= low and stats.min < high):
            groups.append(index)
    table = handle.read_row_groups(groups) if groups else handle.schema_arrow.empty_table()
    buckets = table.column(BUCKET).to_numpy()
    return table.filter(pa.array((buckets >= low) & (buckets < high)))


def check_fits(stage_id: str, name: str, rows: int, bytes_per_row: float, available: int) -> None:
    """Refuse, before reading it, a partition this worker's memory cannot hold, naming it and
    what to change."""
    needed = int(rows * (bytes_per_row + _BYTES_PER_ROW_OVERHEAD))
    if needed > available:
        raise ResourceError(
            f"stage {stage_id!r}: partition {name} holds {rows:,} rows (about {needed / 2**30:.1f} GiB), more "
            f"than the {available / 2**30:.1f} GiB this worker has free; set the stage's `partitions` higher, "
            f"or, for semdedup, more `clusters` (one cluster is never split)")


def single_threaded():
    """A context in which BLAS and OpenMP (numpy's and FAISS's products) use one thread: the same
    sums in the same order on every executor, as a Ray worker (one cpu) computes them, where the
    local driver would spread them over its cores and round differently in the last bit."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def prepared_state(stage, collected) -> tuple[dict | None, dict[str, float]]:
    """A partitioned stage's prepare step (k-means, an evaluation set's embeddings), one thread,
    and the seconds of the phases the stage timed in it."""
    before = dict(stage.seconds)
    with single_threaded():
        prepared = stage.prepare(collected)
    return prepared, stage.phases_since(before)


def available_memory(stage) -> int:
    """The bytes a task of this stage may use: what it reserved, when it did, capped by what
    the machine has free now."""
    import psutil

    free = psutil.virtual_memory().available
    return min(free, stage.resources.memory) if stage.resources.memory else free
