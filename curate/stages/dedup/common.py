"""What the deduplication stages share: the keep policy, and the steps every one of them takes.
Each is a partitioned stage: the collected rows (uid, priority, what the stage compares) are
spread over partitions by a bucket that keeps possible duplicates together (a prefix of the
sha256, a k-means cluster), and each partition's task writes what it found
(`report/duplicates/part-*.parquet`: uid, group, duplicate_of, similarity) and the removed
uids by shard (`report/removed/part-*.parquet`); the apply phase reads its shard's removals
from every partition. Finish gathers the partitions' findings into `report/duplicates.parquet`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.dedup.embeddings import decode
from curate.dedup.greedy import Removals
from curate.errors import ConfigError
from curate.partitions import BUCKET, SHARD, hex_prefix_buckets
from curate.run import stable_hash, write_parquet_atomic
from curate.stage import DESCRIBES_ONLY, PartitionedStage, StageParams
from curate.view import ViewPlan

FOUND = "duplicates.parquet"
_KEY = b"curate.key"
PART_FOLDERS = ("duplicates", "removed", "pairs")  # report folders of files written per partition
_SUMMED = ("compared", "groups", "removed", "pairs")  # figures of partitions that add up; others are shared
DEFAULT_EMBEDDING = "clip_curate_tiny_vit_image_embedding"  # what clip_score writes by default


class KeepParams(StageParams):
    """Which member of a group is kept."""

    keep_by: str | None = Field(None, description="a score column: the member with the highest value is kept "
                                "(ties, and members without a score, by uid); none: the smallest uid")
    prefer: Literal["highest", "lowest"] = Field("highest", description="keep the highest or the lowest keep_by")
    partitions: int | None = Field(None, ge=1, description="P, the reduce's parallel tasks (default: one "
                                   "per GiB of collected rows); the outputs are the same for any P",
                                   json_schema_extra=DESCRIBES_ONLY)


class DuplicateStage(PartitionedStage):
    """collect (uid, priority and what the stage compares) per shard -> find duplicates per
    partition and write them -> apply them as drop reasons."""

    output_schema = "decision.v1"
    reason: ClassVar[str] = "duplicate"

    @abstractmethod
    def compared_columns(self) -> tuple[str, ...]:
        """The view columns this stage compares (an embedding, the image bytes)."""
        ...

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

    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """By default a prefix of the uid: the stage compares each row on its own (not with the
        rest of the pool), so any split will do."""
        return pa.table({BUCKET: hex_prefix_buckets(rows.column("uid"))})

    def find(self, rows: pa.Table, prepared: dict | None) -> tuple[pa.Table, dict]:
        """The duplicates among one partition's collected rows (see duplicates_table) and figures
        for the run summary: what a stage implements when its partitions' findings are final (a
        stage whose keep rule needs every partition's findings overrides reduce_partition and
        combine instead)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither find nor reduce_partition")

    def reduce_partition(self, rows: pa.Table, prepared: dict | None, report_dir: Path, name: str) -> dict:
        """Find one partition's duplicates; write them, and its removed uids by shard."""
        found, details = self.find(rows, prepared)
        removed = found.filter(pc.is_valid(found.column("duplicate_of"))).column("uid")
        hit = pc.is_in(rows.column("uid"), value_set=removed.combine_chunks())
        by_shard = rows.select([SHARD, "uid"]).filter(hit).sort_by([(SHARD, "ascending"), ("uid", "ascending")])
        paths = [report_dir / "duplicates" / f"{name}.parquet", report_dir / "removed" / f"{name}.parquet"]
        digest = write_parquet_atomic(paths[0], found)
        write_parquet_atomic(paths[1], by_shard)
        return {"files": [str(path) for path in paths], "found_sha256": digest, "details": details}

    def combine(self, results: list[dict], prepared: dict | None, report_dir: Path) -> dict:
        """The partitions' files, and their figures added up."""
        return {"found": [r["files"][0] for r in results], "removed": [r["files"][1] for r in results],
                "found_sha256": stable_hash([r["found_sha256"] for r in results]),
                "details": merged_details([r["details"] for r in results])}

    def apply(self, view: pa.Table, state: dict, shard: str) -> pa.Table:
        """Drop the rows of this shard that a partition found to be duplicates."""
        removed = pq.read_table(state["removed"], columns=["uid"], filters=[(SHARD, "=", shard)]).column("uid")
        hit = pc.is_in(view.column("uid"), value_set=removed.combine_chunks()).to_numpy(zero_copy_only=False)
        reason = np.where(hit, self.reason, None).astype(object)
        return pa.table({"uid": view.column("uid"), "drop_reason": pa.array(reason, pa.string())})

    def limitations(self, details: dict | None) -> list[str]:
        """One member of each group is kept, by the keep policy."""
        keep_by = self.params.keep_by
        return [f"- {self.id}: of each group of duplicates only one member was kept "
                f"({'the highest ' + keep_by if keep_by else 'the smallest uid'})."]

    def finish(self, state: dict, stage_dir: Path, view: ViewPlan, outputs: dict[str, Path]) -> dict:
        """Gather the partitions' findings into report/duplicates.parquet (a partition at a
        time; kept while the partitions' files are the same), remove the files of partitions
        the run no longer has; return the figures found."""
        path, key = stage_dir / "report" / FOUND, state["found_sha256"].encode()
        if _metadata(path).get(_KEY) != key:
            write_concatenated(path, state["found"], {_KEY: key})
        current = {*state["found"], *state["removed"], *state.get("pairs", [])}
        for folder in PART_FOLDERS:
            for part in (stage_dir / "report" / folder).glob("*.parquet"):
                if str(part) not in current:  # a partition of an earlier run with more partitions
                    part.unlink()
        return state["details"]


def write_concatenated(path: Path, parts: list[str], metadata: dict) -> None:
    """One Parquet file of every part file's rows, in order, read and written a part at a time."""
    schema = pq.read_schema(parts[0]).with_metadata(metadata)
    tmp = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).replace_schema_metadata(metadata))
    tmp.replace(path)


def merged_details(parts: list[dict]) -> dict:
    """Figures of the partitions as one: counts (and counts by name) added up, the others (a
    largest cluster, the index kind) taken from the partition with the largest."""
    merged: dict = {}
    for details in parts:
        for name, value in details.items():
            if isinstance(value, dict):
                merged[name] = dict(sorted((Counter(merged.get(name, {})) + Counter(value)).items()))
            elif name in _SUMMED:
                merged[name] = merged.get(name, 0) + value
            elif name not in merged or (isinstance(value, (int, float)) and value > merged[name]):
                merged[name] = value
    return merged


def _metadata(path: Path) -> dict[bytes, bytes]:
    """A report file's schema metadata (where it records the inputs it was written from)."""
    return (pq.read_schema(path).metadata or {}) if path.exists() else {}


def unpack(rows: pa.Table, embedding: str | None = None) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """uids, priorities and (when a column is named) the embeddings of a partition's rows, as
    one float32 matrix (0 x 0 when there are none), decoded a chunk at a time."""
    uids = rows.column("uid").combine_chunks().cast(pa.string())
    priority = rows.column("priority").to_numpy() if rows.num_rows else np.zeros(0)
    if embedding is None or rows.num_rows == 0:
        return uids, priority, np.zeros((0, 0), np.float32)
    chunks = [chunk for chunk in rows.column(embedding).chunks if len(chunk)]
    width = decode(chunks[0][:1]).shape[1]
    matrix, at = np.empty((rows.num_rows, width), np.float32), 0
    for chunk in chunks:
        vectors = decode(chunk, " of the partition")
        if vectors.shape[1] != width:
            raise ConfigError(f"embeddings have {vectors.shape[1]} and {width} dimensions: they must all come "
                              f"from one model")
        matrix[at: at + len(chunk)] = vectors
        at += len(chunk)
    return uids, priority, matrix


def duplicates_table(uids: pa.Array, rank: np.ndarray, removals: Removals, **extra: np.ndarray) -> pa.Table:
    """One row per member of a group (kept members have no duplicate_of), by group then uid. A
    group is named by a hash of its kept member's uid, so the name does not depend on which rows
    were reduced together."""
    members = np.flatnonzero(removals.group >= 0)
    duplicate_of = removals.duplicate_of[members]
    removed = duplicate_of >= 0
    kept_item = np.argsort(rank)[removals.group[members]]  # group: the kept member's rank
    kept_uids = pl.Series(uids.take(pa.array(kept_item, pa.int64())))
    group = (kept_uids.hash(seed=0).to_numpy() >> np.uint64(1)).astype(np.int64)
    table = pa.table({
        "uid": uids.take(pa.array(members, pa.int64())),
        "group": pa.array(group, pa.int64()),
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
