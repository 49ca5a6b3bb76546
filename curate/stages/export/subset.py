"""The output of a metadata-only run, as DataComp's filtering track asks for it: `subset.npy`
(the curated uids, a sorted numpy u8,u8 array that DataComp's resharder reads against the pool's
shards) and the curated rows' metadata as Parquet, one file per input shard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.run import write_parquet_atomic
from curate.stage import Collected, SinkStage, StageParams, register
from curate.view import ViewPlan


class SubsetParams(StageParams):
    """Which columns the curated metadata keeps."""

    columns: list[str] | None = Field(None, description="the columns of the curated metadata (null: every column "
                                      "but the embeddings and image bytes, which the pool already holds)")


@register
class ExportSubset(SinkStage):
    """subset.npy (DataComp's uid file) and metadata/<shard>.parquet of the curated rows."""

    name = "export_subset"
    Params = SubsetParams
    output_schema = "subset.v1"
    collect_columns = ()

    def needed_columns(self) -> tuple[str, ...] | None:
        """The columns asked for (None: all, binary ones left out when written)."""
        return tuple(self.params.columns) if self.params.columns is not None else None

    def collect(self, view: pa.Table) -> pa.Table:
        """How many samples of this shard are curated."""
        return pa.table({"kept": [view.column("drop_reason").null_count]})

    def reduce(self, collected: Collected) -> dict:
        """One output unit per input shard that keeps any sample."""
        return {"units": [shard for shard in collected if collected[shard].column("kept")[0].as_py()]}

    def units(self, state: dict) -> list[str]:
        """The input shards with curated samples."""
        return state["units"]

    def write_unit(self, unit: str, state: dict, out_dir: Path, view: ViewPlan) -> dict:
        """metadata/<shard>.parquet: the shard's curated rows, drop_reason and binary columns left out."""
        rows = _without_binary(view).read(unit)
        rows = rows.filter(pc.is_null(rows.column("drop_reason")))
        digest = write_parquet_atomic(out_dir / "metadata" / f"{unit}.parquet", rows.drop_columns(["drop_reason"]))
        return {"rows": rows.num_rows, "output_sha256": digest, "files": [f"metadata/{unit}.parquet"]}

    def unit_uids(self, unit: str, state: dict, out_dir: Path) -> pa.Array:
        """The uids of one shard's curated metadata."""
        return pq.read_table(out_dir / "metadata" / f"{unit}.parquet", columns=["uid"]).column("uid").combine_chunks()

    def finalize(self, state: dict, out_dir: Path) -> dict:
        """Files of shards no longer curated are removed (subset.npy is written by the run)."""
        folder = out_dir / "metadata"
        for stale in folder.glob("*.parquet"):
            if stale.stem not in state["units"]:
                stale.unlink()
        return {"curated_metadata": str(folder)}


def _without_binary(view: ViewPlan) -> ViewPlan:
    """The view without its binary columns (embeddings, image bytes): the pool holds them."""
    keep = lambda name: name in ("uid", "drop_reason") or not _is_binary(view.schema.field(name).type)  # noqa: E731
    reads = tuple((stage_id, tuple(c for c in columns if keep(c))) for stage_id, columns in view.reads)
    schema = pa.schema([f for f in view.schema if keep(f.name)])
    return dataclasses.replace(view, reads=reads, schema=schema)


def _is_binary(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)
