"""What the deduplication stages share: the keep policy, gathering the collected rows in the
reduce, and the two steps every one of them takes: first write what it found
(`report/duplicates.parquet`: uid, group, duplicate_of, similarity), then apply it as drop
reasons. The file is reused while the configuration and every collect result are unchanged."""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.dedup.embeddings import decode
from curate.dedup.greedy import Removals
from curate.errors import ConfigError
from curate.run import file_sha256, write_parquet_atomic
from curate.stage import TIMINGS, Collected, GlobalStage, StageParams
from curate.view import ViewPlan

FOUND = "duplicates.parquet"
REMOVED = "removed_by_shard.parquet"
_KEY = b"curate.key"
_DETAILS = b"curate.details"
DEFAULT_EMBEDDING = "clip_curate_tiny_vit_image_embedding"  # what clip_score writes by default


class KeepParams(StageParams):
    """Which member of a group is kept."""

    keep_by: str | None = Field(None, description="a score column: the member with the highest value is kept "
                                "(ties, and members without a score, by uid); none: the smallest uid")
    prefer: Literal["highest", "lowest"] = Field("highest", description="keep the highest or the lowest keep_by")


class DuplicateStage(GlobalStage):
    """collect (uid, priority and what the stage compares) per shard -> find duplicates once
    and write them -> apply them as drop reasons."""

    output_schema = "decision.v1"
    reason: ClassVar[str] = "duplicate"

    @abstractmethod
    def compared_columns(self) -> tuple[str, ...]:
        """The view columns this stage compares (an embedding, the image bytes)."""
        ...

    def __init__(self, params: StageParams, stage_id: str | None = None):
        super().__init__(params, stage_id)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        """Time one phase of finding (seconds kept in self.seconds, shown in the run summary)."""
        started = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)

    def needed_columns(self) -> tuple[str, ...]:
        """Applying needs only uid and drop_reason, which every view has."""
        return ()

    def needed_for_collect(self) -> tuple[str, ...]:
        """The compared columns and the keep_by column."""
        keep_by = self._keep_column()
        return self.compared_columns() + ((keep_by,) if keep_by else ())

    def _keep_column(self) -> str | None:
        return self.params.keep_by

    def check_view(self, schema: pa.Schema) -> None:
        """keep_by must be a numeric column."""
        keep_by = self._keep_column()
        if keep_by and keep_by in schema.names:
            kind = schema.field(keep_by).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                raise ConfigError(f"stage {self.id!r}: keep_by column {keep_by!r} is {kind}, not a number")

    def collect(self, view: pa.Table) -> pa.Table:
        """uid, priority (larger is kept first; NaN: none) and the compared values of every
        alive row that has them."""
        alive = view.filter(pc.is_null(view.column("drop_reason")))
        for name in self.compared_columns():
            alive = alive.filter(pc.is_valid(alive.column(name)))
        return pa.table({"uid": alive.column("uid"), "priority": self._priority(alive), **self.compared_values(alive)})

    def _priority(self, view: pa.Table) -> np.ndarray:
        keep_by = self._keep_column()
        if not keep_by:
            return np.full(view.num_rows, np.nan)
        values = pc.fill_null(view.column(keep_by).cast(pa.float64()), np.nan).to_numpy()
        return values if self.params.prefer == "highest" else -values

    def compared_values(self, alive: pa.Table) -> dict[str, Any]:
        """The columns of the collect result besides uid and priority."""
        return {name: alive.column(name) for name in self.compared_columns()}

    @abstractmethod
    def find(self, collected: Collected) -> tuple[pa.Table, dict]:
        """The duplicates table (see duplicates_table) and figures for the run summary."""
        ...

    def reduce(self, collected: Collected) -> dict:
        """Find the duplicates (or reuse what an earlier run found from the same inputs), write
        them, and hand their file, and that of the removed uids by shard, to the apply phase."""
        path, removed = collected.report_dir / FOUND, collected.report_dir / REMOVED
        found, key = _metadata(path), collected.key.encode()
        if found.get(_KEY) == key and _metadata(removed).get(_KEY) == key:
            details = json.loads(found[_DETAILS])
            return {"found": str(path), "sha256": file_sha256(path), "removed": str(removed), "details": details}
        table, details = self.find(collected)
        write_removed_by_shard(removed, table, collected)
        table = table.replace_schema_metadata({_KEY: collected.key, _DETAILS: json.dumps(details, sort_keys=True)})
        return {"found": str(path), "sha256": write_parquet_atomic(path, table), "removed": str(removed),
                "details": details, TIMINGS: self.seconds}

    def apply(self, view: pa.Table, state: dict, shard: str) -> pa.Table:
        """Drop the rows of this shard that were found to be duplicates."""
        removed = pq.read_table(state["removed"], columns=["uid"], filters=[("shard", "=", shard)]).column("uid")
        hit = pc.is_in(view.column("uid"), value_set=removed.combine_chunks()).to_numpy(zero_copy_only=False)
        reason = np.where(hit, self.reason, None).astype(object)
        return pa.table({"uid": view.column("uid"), "drop_reason": pa.array(reason, pa.string())})

    def limitations(self, details: dict | None) -> list[str]:
        """One member of each group is kept, by the keep policy."""
        keep_by = self.params.keep_by
        return [f"- {self.id}: of each group of duplicates only one member was kept "
                f"({'the highest ' + keep_by if keep_by else 'the smallest uid'})."]

    def finish(self, state: dict, stage_dir: Path, view: ViewPlan, outputs: dict[str, Path]) -> dict:
        """What was found, for the run summary (with the seconds of each phase, when found in this
        run rather than reused)."""
        return state["details"] | ({"seconds": state[TIMINGS]} if state.get(TIMINGS) else {})


def write_removed_by_shard(path: Path, found: pa.Table, collected: Collected) -> None:
    """(shard, uid) of every removed row, a row group per shard, so that each apply task reads
    only its shard's part: reading every removal in every shard would cost shards x pool. Built
    shard by shard: the task holds the removed uids and one shard's, never the pool's."""
    removed = found.filter(pc.is_valid(found.column("duplicate_of"))).column("uid").combine_chunks()
    schema = pa.schema([("shard", pa.string()), ("uid", pa.string())], metadata={_KEY: collected.key})
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, schema) as writer:
        for shard in collected:
            uids = collected.column(shard, "uid").combine_chunks().cast(pa.string())
            hit = uids.filter(pc.is_in(uids, value_set=removed))
            hit = hit.take(pc.sort_indices(hit))
            if len(hit):
                writer.write_table(pa.table([pa.array([shard] * len(hit), pa.string()), hit], schema=schema))
    tmp.replace(path)


def _metadata(path: Path) -> dict[bytes, bytes]:
    """A report file's schema metadata (where it records the inputs it was written from)."""
    return (pq.read_schema(path).metadata or {}) if path.exists() else {}


def gather(collected: Collected, embedding: str | None = None) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """uids, priorities and (when a column is named) the embeddings of every collected row, read
    shard by shard into one float32 matrix (0 x 0 when there are none)."""
    total = sum(collected.rows(shard) for shard in collected)  # one matrix, filled shard by shard
    uids, priority, matrix, at = [], np.empty(total), None, 0
    for shard in collected:
        table = collected[shard]
        uids.append(table.column("uid"))
        priority[at: at + table.num_rows] = table.column("priority").to_numpy()
        if embedding is not None and table.num_rows:
            vectors = decode(table.column(embedding), f" of shard {shard}")
            if matrix is None:
                matrix = np.empty((total, vectors.shape[1]), np.float32)
            if vectors.shape[1] != matrix.shape[1]:
                raise ConfigError(f"embeddings of shard {shard} have {vectors.shape[1]} dimensions, earlier ones "
                                  f"{matrix.shape[1]}: they must all come from one model")
            matrix[at: at + table.num_rows] = vectors
        at += table.num_rows
    uid_array = pa.chunked_array(uids, pa.string()).combine_chunks() if uids else pa.array([], pa.string())
    return uid_array, priority, np.zeros((0, 0), np.float32) if matrix is None else matrix


def duplicates_table(uids: pa.Array, removals: Removals, **extra: np.ndarray) -> pa.Table:
    """One row per member of a group (kept members have no duplicate_of), by group then uid."""
    members = np.flatnonzero(removals.group >= 0)
    duplicate_of = removals.duplicate_of[members]
    removed = duplicate_of >= 0
    table = pa.table({
        "uid": uids.take(pa.array(members)),
        "group": pa.array(removals.group[members], pa.int64()),
        "duplicate_of": uids.take(pa.array(np.where(removed, duplicate_of, 0), mask=~removed)),
        "similarity": pa.array(removals.similarity[members], pa.float32(), mask=~removed),
        **{name: values[members] for name, values in extra.items()},
    })
    return table.sort_by([("group", "ascending"), ("uid", "ascending")])


def group_details(removals: Removals, candidates: int) -> dict:
    """Figures every deduplication stage reports."""
    groups = np.sort(removals.group[removals.group >= 0])
    distinct = int(len(groups) and 1 + np.count_nonzero(groups[1:] != groups[:-1]))
    return {"compared": candidates, "groups": distinct, "removed": int(removals.removed.sum())}
