"""metaclip_balance: entry counts over the whole pool, then keep each caption with probability
1 - prod(1 - min(1, t / count_i)), by draws seeded per (uid, entry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from curate.io.subset import uids_to_u8u8
from curate.metaclip import balance as math
from curate.metaclip.metadata import load_metadata
from curate.run import write_parquet_atomic
from curate.stage import Collected, GlobalStage, StageParams, register
from curate.tree_reduce import TreeReduce
from curate.view import ViewPlan

IDS = "metaclip_entry_ids"
DROPPED = "metaclip_balance"
_SAMPLING_STREAM = 1 << 40  # an "entry id" no metadata reaches: sampling draws are not balancing draws


class MetaclipBalanceParams(StageParams):
    """How t is set (exactly one of t, target_size, tail_fraction, tail_entry_fraction) and the
    seed of the draws."""

    t: float | None = Field(None, gt=0, description="entries matched by more captions than t are sampled down to "
                            "about t (MetaCLIP: 20,000 for 400M captions)")
    target_size: int | None = Field(None, ge=1, description="choose t so that the expected curated size is this")
    tail_fraction: float | None = Field(None, gt=0, le=1, description="MetaCLIP 2's p: choose t with its p_to_t, so "
                                        "that about this share of all matches (entry counts summed) falls in tail "
                                        "entries")
    tail_entry_fraction: float | None = Field(None, gt=0, le=1, description="choose t so that this share of the "
                                              "matched entries are tail entries (count <= t), kept whole")
    size_sample: float = Field(1.0, gt=0, le=1, description="with target_size: the share of captions (chosen by uid) "
                               "the reduce reads to find t; below 1 for pools too large to hold")
    seed: int = Field(0, ge=0, description="seed of the per-(uid, entry) draws")
    metadata: Path | None = Field(None, description="metadata.json, to name the entries in entry_counts.parquet")

    @model_validator(mode="after")
    def _one_way_to_t(self) -> MetaclipBalanceParams:
        ways = ("t", "target_size", "tail_fraction", "tail_entry_fraction")
        given = [name for name in ways if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(ways)} (got {given or 'none'})")
        return self


@register
class MetaclipBalance(GlobalStage):
    """Balanced sampling over metadata entries, the same whatever the sharding or executor."""

    name = "metaclip_balance"
    Params = MetaclipBalanceParams
    output_schema = "metaclip_balance.v1"
    input_columns = (IDS,)
    collect_columns = (IDS,)

    def collect(self, view: pa.Table) -> pa.Table:
        """Entry counts of this shard's alive captions (entry_id, count), and with target_size
        the entry lists of the sampled captions (entry_id null, ids)."""
        alive = view.filter(pc.is_null(view.column("drop_reason")))
        _, entry = math.flatten(alive.column(IDS))
        ids, counts = np.unique(entry, return_counts=True)
        parts = [pa.table({"entry_id": pa.array(ids, pa.int32()), "count": pa.array(counts, pa.int64()),
                           "ids": pa.nulls(len(ids), pa.list_(pa.int32()))})]
        if self.params.target_size is not None:
            sample = alive.filter(pa.array(self._sampled(alive)))
            parts.append(pa.table({"entry_id": pa.nulls(sample.num_rows, pa.int32()),
                                   "count": pa.nulls(sample.num_rows, pa.int64()),
                                   "ids": sample.column(IDS).combine_chunks()}))
        return pa.concat_tables(parts)

    def _sampled(self, view: pa.Table) -> np.ndarray:
        """The captions the reduce reads to find t: a share size_sample of them, by uid."""
        if self.params.size_sample >= 1:
            return np.ones(view.num_rows, bool)
        pairs = uids_to_u8u8(view.column("uid").to_pylist())
        draw = math.uniform_draws(self.params.seed, pairs["f0"], pairs["f1"], np.full(view.num_rows, _SAMPLING_STREAM))
        return draw < self.params.size_sample

    def reduce(self, collected: Collected) -> dict:
        """Entry counts and t, in this process (see reduce_with)."""
        return self.reduce_with(collected, TreeReduce.in_process(self, collected))

    def reduce_with(self, collected: Collected, tree: TreeReduce) -> dict:
        """Global entry counts, summed by a tree of tasks (each holds FAN_IN count vectors at
        most), then t: from the counts alone, or with target_size in one task that reads the
        sampled captions' entry lists."""
        counts = tree.summed(_entry_counts, label="entry counts")
        sampled = self.params.target_size is not None
        t = tree.call(self._threshold, collected, counts) if sampled else self._threshold(collected, counts)
        return {"t": t, "counts": counts.tolist()}

    def _threshold(self, collected: Collected, counts: np.ndarray) -> float:
        params = self.params
        if params.t is not None:
            return params.t
        if params.tail_fraction is not None:
            return math.threshold_for_tail(counts, params.tail_fraction)
        if params.tail_entry_fraction is not None:
            return math.threshold_for_tail_entries(counts, params.tail_entry_fraction)
        sample = []
        for shard in collected:
            table = collected[shard]
            sample.extend(table.filter(pc.is_null(table.column("entry_id"))).column("ids").chunks)
        ids = pa.chunked_array(sample, pa.list_(pa.int32()))
        rows, entry = math.flatten(ids)
        return math.threshold_for_size(params.target_size, rows, entry, counts, len(ids),
                                       scale=1 / params.size_sample)

    def apply(self, view: pa.Table, state: dict, shard: str) -> pa.Table:
        """P(keep) and the seeded draws of every alive caption."""
        n, alive = view.num_rows, pc.is_null(view.column("drop_reason"))
        rows, entry = math.flatten(pc.if_else(alive, view.column(IDS), pa.scalar(None, view.schema.field(IDS).type)))
        p = math.probabilities(np.asarray(state["counts"], np.int64), state["t"])  # alive entries were counted
        probability = math.keep_probability(rows, entry, p, n)
        pairs = uids_to_u8u8(view.column("uid").to_pylist())
        kept = math.kept(self.params.seed, pairs["f0"], pairs["f1"], rows, entry, p, n)
        alive = alive.to_numpy(zero_copy_only=False)
        reason = np.where(alive & ~kept, DROPPED, None).astype(object)
        return pa.table({"uid": view.column("uid"),
                         "metaclip_keep_probability": pa.array(probability, pa.float32(), mask=~alive),
                         "drop_reason": pa.array(reason, pa.string())})

    def finish(self, state: dict, stage_dir: Path, view: ViewPlan, outputs: dict[str, Path]) -> dict:
        """report/entry_counts.parquet (per matched entry: count before, count after, p) and the
        expected size next to the realised one."""
        before = np.asarray(state["counts"], np.int64)
        after = np.zeros(len(before), np.int64)
        expected, realised = 0.0, 0
        for shard, path in outputs.items():
            own = pq.read_table(path, columns=["metaclip_keep_probability", "drop_reason"])
            upstream = view.read(shard)
            kept = (pc.is_null(upstream.column("drop_reason")).to_numpy(zero_copy_only=False)
                    & pc.is_null(own.column("drop_reason")).to_numpy(zero_copy_only=False))
            _, entry = math.flatten(upstream.column(IDS).filter(pa.array(kept)))
            after += np.bincount(entry, minlength=len(before))[:len(before)]
            expected += float(pc.sum(own.column("metaclip_keep_probability")).as_py() or 0.0)
            realised += int(kept.sum())
        self._write_counts(stage_dir, before, after, state["t"])
        return {"t": state["t"], "tail_fraction": round(math.tail_share(before, state["t"]), 6),
                "expected_size": round(expected, 1), "realised_size": realised,
                "entries_matched": int((before > 0).sum()), "entries_over_t": int((before > state["t"]).sum())}

    def limitations(self, details: dict | None) -> list[str]:
        """Frequent concepts are under-represented on purpose."""
        t = (details or {}).get("t", self.params.t)
        return [f"- MetaCLIP balancing sampled entries matched by more than t = {t} captions down "
                f"to about t: frequent concepts are under-represented on purpose, and concepts outside the "
                f"metadata never count."]

    def _write_counts(self, stage_dir: Path, before: np.ndarray, after: np.ndarray, t: float) -> None:
        matched = np.flatnonzero(before)
        columns = {"entry_id": pa.array(matched, pa.int32())}
        if self.params.metadata is not None:
            entries = load_metadata(self.params.metadata)
            columns["entry"] = pa.array([entries[i] if i < len(entries) else None for i in matched], pa.string())
        columns |= {"count_before": before[matched], "count_after": after[matched],
                    "p": math.probabilities(before[matched], t)}
        write_parquet_atomic(stage_dir / "report" / "entry_counts.parquet", pa.table(columns))


def _entry_counts(collected: Collected, shard: str, argument: None) -> np.ndarray:
    """One shard's alive captions per entry, a dense vector indexed by entry id."""
    table = pq.read_table(collected.paths[shard], columns=["entry_id", "count"])
    counted = table.filter(pc.is_valid(table.column("entry_id")))
    entry = counted.column("entry_id").to_numpy().astype(np.int64)
    return np.bincount(entry, weights=counted.column("count").to_numpy(), minlength=1).astype(np.int64)
