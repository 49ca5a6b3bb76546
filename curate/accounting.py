"""The end-of-run check, partitioned: every ingested uid is curated or dropped, exactly once,
without one task holding every uid.

1. Per ingest shard (in parallel): its dropped rows (for dropped.parquet) and its uids with
   alive or not, bucketed by their first 16 bits.
2. Per sink unit (in parallel): the uids the unit wrote, bucketed the same way.
3. Per partition, a run of buckets (in parallel): the check on that range of uids, and the
   range's curated uids sorted, the part of subset.npy it covers (ranges are in uid order, so
   the parts, in order, are the sorted subset).
Each task holds one shard, one unit or one partition; the driver adds up counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import InvariantError
from curate.io.subset import SUBSET_DTYPE, first_repeat, pair_keys, sorted_pairs, u8u8_to_uids, uids_to_u8u8
from curate.partitions import BUCKET, read_partition
from curate.run import RunDir, write_atomic, write_parquet_atomic
from curate.schema import load_schema
from curate.view import first_reason

FOLDER = "_final"  # RUN/_final/: the check's working files, removed once the run is finished
ROW_BYTES = 64  # what a partition task holds per uid: pairs of the ingested, dropped and curated


def uid_table(uids: pa.Array | pa.ChunkedArray, alive: np.ndarray | None = None) -> pa.Table:
    """uids as (high, low) words, with whether each is alive, in uid order, so in bucket order
    (a bucket: the first 16 bits)."""
    pairs = uids_to_u8u8(uids.to_pylist())
    order = np.argsort(pair_keys(pairs), kind="stable")
    pairs = pairs[order]
    columns = {"high": pairs["f0"], "low": pairs["f1"],
               BUCKET: pa.array((pairs["f0"] >> np.uint64(48)).astype(np.int32))}
    return pa.table(columns | ({"alive": np.asarray(alive, bool)[order]} if alive is not None else {}))


@dataclass(frozen=True)
class ShardAccount:
    """Phase 1 for one ingest shard: its dropped rows and its bucketed uids."""

    run_root: str
    shard: str
    deciders: tuple[str, ...]

    def __call__(self, stage: Any, shared: Any) -> dict:
        run = RunDir(self.run_root)
        dropped, everything = dropped_rows(run, list(self.deciders), self.shard)
        write_parquet_atomic(run.root / FOLDER / "dropped" / f"{self.shard}.parquet", dropped)
        alive = everything.column("drop_reason").is_null().to_numpy(zero_copy_only=False)
        write_parquet_atomic(run.root / FOLDER / "ingested" / f"{self.shard}.parquet",
                             uid_table(everything.column("uid"), alive))
        return {"shard": self.shard, "ingested": everything.num_rows,
                "reasons": dict(Counter(dropped.column("drop_reason").to_pylist()))}


@dataclass(frozen=True)
class UnitAccount:
    """Phase 2 for one sink unit: the uids it wrote, bucketed (the sink's state is shared)."""

    run_root: str
    unit: str

    def __call__(self, stage: Any, state: Any) -> dict:
        run = RunDir(self.run_root)
        uids = stage.unit_uids(self.unit, state, run.stage_dir(stage.id))
        write_parquet_atomic(run.root / FOLDER / "curated" / f"{self.unit}.parquet", uid_table(uids))
        return {"shard": self.unit, "curated": len(uids)}


@dataclass(frozen=True)
class Accounted:
    """What every range check shares, sent once: the ingest shards, and the sink's units (None:
    no sink, the alive uids are the curated ones)."""

    shards: list[str]
    units: list[str] | None


@dataclass(frozen=True)
class RangeCheck:
    """Phase 3 for one partition: the invariant on a range of uids; its sorted curated uids."""

    run_root: str
    name: str
    low: int
    high: int

    def __call__(self, stage: Any, accounted: Accounted) -> dict:
        folder = RunDir(self.run_root).root / FOLDER
        ingested = read_partition({s: folder / "ingested" / f"{s}.parquet" for s in accounted.shards},
                                  self.low, self.high)
        pairs, alive = _pairs(ingested), ingested.column("alive").to_numpy(zero_copy_only=False)
        if accounted.units is None:
            curated = pairs[alive]
        else:
            curated = _pairs(read_partition({u: folder / "curated" / f"{u}.parquet" for u in accounted.units},
                                            self.low, self.high))
        check_invariant(pairs, curated, pairs[~alive])
        ordered = sorted_pairs(curated)
        write_atomic(folder / "subset" / f"{self.name}.bin", ordered.tobytes())
        return {"shard": self.name, "ingested": len(pairs), "curated": len(curated), "dropped": int((~alive).sum())}


def _pairs(table: pa.Table) -> np.ndarray:
    pairs = np.zeros(table.num_rows, SUBSET_DTYPE)
    if table.num_rows:
        pairs["f0"], pairs["f1"] = table.column("high").to_numpy(), table.column("low").to_numpy()
    return pairs


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


def write_dropped(run: RunDir, shards: list[str]) -> None:
    """RUN/dropped.parquet from every shard's dropped rows, in shard order, a shard at a time."""
    path = run.root / "dropped.parquet"
    tmp = path.with_name(".dropped.parquet.tmp")
    repeated = ["source", "drop_reason", "dropped_by"]  # uids, keys, captions: a dictionary never pays
    with pq.ParquetWriter(tmp, load_schema("dropped.v1"), compression="zstd", use_dictionary=repeated,
                          write_statistics=repeated) as writer:
        for shard in shards:
            writer.write_table(pq.read_table(run.root / FOLDER / "dropped" / f"{shard}.parquet"))
    tmp.replace(path)


def write_subset_parts(path: Path, parts: list[Path], count: int) -> None:
    """The sorted subset file DataComp's tooling reads (.npy of uid pairs), from sorted parts
    that follow each other in uid order, a part at a time."""
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(SUBSET_DTYPE),
                                                   "fortran_order": False, "shape": (count,)})
        for part in parts:
            out.write(part.read_bytes())
    tmp.replace(path)


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
