"""The shard view: what a stage sees of one shard, read from the outputs of earlier stages.

Every stage keeps the rows of its input in order, so the view is the earlier outputs placed
side by side (checked by uid), not a join. drop_reason is the first reason any earlier stage
gave, so later stages see at once which rows are still alive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import ConfigError, InputError
from curate.io.npz import npz_column
from curate.run import RunDir

RESERVED = ("uid", "drop_reason")
BORROWED = "curate.borrowed"  # an output's metadata key: column -> the row-aligned file it is read from


@dataclass(frozen=True)
class UpstreamStage:
    """An earlier stage as the view sees it: its id, output schema, and whether it drops rows."""

    stage_id: str
    schema: pa.Schema
    decides: bool


@dataclass(frozen=True)
class ViewPlan:
    """Which columns to read from which earlier stage's output, for any shard."""

    run_root: str
    reads: tuple[tuple[str, tuple[str, ...]], ...]
    decision_stages: tuple[str, ...] = field(default=())
    schema: pa.Schema = field(default_factory=lambda: pa.schema([]))

    def read(self, shard: str, row_groups: list[int] | None = None) -> pa.Table:
        """Read the view of one shard (optionally only some Parquet row groups). Borrowed columns
        (see Stage.borrowed_columns) hold values for the rows still alive only, null for the
        others: no stage reads an embedding of a dropped row, and a pool's .npz is then read only
        where it is needed."""
        run = RunDir(self.run_root)
        columns: dict[str, pa.ChunkedArray] = {}
        reasons: list[tuple[str, pa.ChunkedArray]] = []
        borrowed: dict[str, tuple[dict, np.ndarray | None]] = {}
        uids = None
        for stage_id, wanted in self.reads:
            table, lent = _read_part(run.output_path(stage_id, shard), wanted, row_groups, with_uid=uids is None)
            uids = table.column("uid") if uids is None else _check_rows(uids, table, stage_id, shard)
            borrowed |= lent
            for name in wanted:
                if name not in RESERVED:
                    columns[name] = None if name in lent else table.column(name)  # borrowed: read below
            if stage_id in self.decision_stages:
                reasons.append((stage_id, table.column("drop_reason")))
        reason = first_reason(reasons)[0]
        if borrowed:
            alive = reason.is_null().to_numpy(zero_copy_only=False)
            for name, (source, rows) in borrowed.items():
                positions = np.arange(len(alive)) if rows is None else rows
                columns[name] = npz_column(source["file"], source["key"], positions, alive)
        return pa.table({"uid": uids, **columns, "drop_reason": reason})

    def row_group_sizes(self, shard: str) -> list[int]:
        """Rows per Parquet row group of the shard (every stage writes the same layout)."""
        metadata = pq.read_metadata(RunDir(self.run_root).output_path(self.reads[0][0], shard))
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]

    def drop_reasons(self, shard: str) -> pa.ChunkedArray:
        """Only the shard's drop_reason column (cheap: no other column is read)."""
        run = RunDir(self.run_root)
        reasons = [(stage_id, pq.read_table(run.output_path(stage_id, shard), columns=["drop_reason"]).column(0))
                   for stage_id in self.decision_stages]
        return first_reason(reasons)[0]


def first_reason(reasons: list[tuple[str, pa.ChunkedArray]]) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(drop_reason, dropped_by) per row: the first stage, in order, that gave a reason."""
    reason = reasons[0][1]
    by = pc.if_else(reason.is_valid(), reasons[0][0], pa.scalar(None, pa.string()))
    for stage_id, theirs in reasons[1:]:
        by = pc.if_else(pc.and_(by.is_null(), theirs.is_valid()), stage_id, by)
        reason = pc.coalesce(reason, theirs)
    return reason, by


def _read_part(path, wanted: tuple[str, ...], row_groups: list[int] | None,
               with_uid: bool = True) -> tuple[pa.Table, dict]:
    """Read some columns of one stage output, with uid (when asked) and drop_reason (if present);
    and, for each wanted column it borrows, where it lies and which of the file's rows are read
    (None: all)."""
    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(f"{path} is missing; run the pipeline again to redo it") from None
    present = handle.schema_arrow.names
    lent = json.loads((handle.schema_arrow.metadata or {}).get(BORROWED.encode(), b"{}"))
    columns = ["uid"] * with_uid + [c for c in wanted if c not in RESERVED and c not in lent]
    if "drop_reason" in present:
        columns.append("drop_reason")
    table = handle.read(columns=columns) if row_groups is None else handle.read_row_groups(row_groups, columns=columns)
    rows = None if row_groups is None else _rows_of(handle, row_groups)
    return table, {name: (lent[name], rows) for name in wanted if name in lent}


def _rows_of(handle: pq.ParquetFile, row_groups: list[int]) -> np.ndarray:
    """The row numbers the given row groups hold, in order."""
    sizes = [handle.metadata.row_group(i).num_rows for i in range(handle.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return np.concatenate([np.arange(starts[g], starts[g + 1]) for g in row_groups] or [np.zeros(0, np.int64)])


def _check_rows(uids: pa.ChunkedArray, table: pa.Table, stage_id: str, shard: str) -> pa.ChunkedArray:
    """Every stage writes one row per source row, in order (checked when it commits, and its
    commit marker names the outputs it read): here only the counts are compared, so a view
    reads the uids once."""
    if table.num_rows != len(uids):
        raise InputError(
            f"output of stage {stage_id!r} for shard {shard} has {table.num_rows} rows, the source {len(uids)}; "
            f"the run directory is inconsistent: remove {stage_id}/ and run again"
        )
    return uids


def plan_view(run_root: str, upstream: list[UpstreamStage], needed: tuple[str, ...] | None,
              stage_id: str) -> ViewPlan:
    """Decide which earlier output provides each needed column (the latest one wins).

    needed=None asks for every column. A column no earlier stage writes is a ConfigError.
    """
    provider: dict[str, str] = {}
    for up in upstream:
        for name in up.schema.names:
            if name not in RESERVED:
                provider[name] = up.stage_id
    wanted = list(provider) if needed is None else [c for c in needed if c not in RESERVED]
    missing = [c for c in wanted if c not in provider]
    if "image" in missing:
        raise ConfigError(f"stage {stage_id!r} needs the images, and this run is metadata-only: its ingest stage "
                          f"writes no image column (DataComp's Parquet + npz carry none). Remove {stage_id!r}, "
                          f"or ingest a pool that carries its images")
    if missing:
        raise ConfigError(
            f"stage {stage_id!r} reads column(s) {missing} that no earlier stage writes; "
            f"available: {sorted(provider)}"
        )
    reads = []
    for up in upstream:
        cols = tuple(c for c in wanted if provider[c] == up.stage_id)
        if cols or up.decides or up is upstream[0]:
            reads.append((up.stage_id, cols))
    deciders = tuple(up.stage_id for up in upstream if up.decides)
    types = {up.stage_id: up.schema for up in upstream}
    fields = [types[provider[c]].field(c) for c in wanted]
    schema = pa.schema([pa.field("uid", pa.string()), *fields, pa.field("drop_reason", pa.string())])
    return ViewPlan(run_root, tuple(reads), deciders, schema)
