"""Write the kept samples as WebDataset shards of a fixed size, with their Parquet metadata,
a DataComp subset file (sorted u8,u8 uids) and sizes.json for open_clip's trainer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from pydantic import Field

from curate.io.subset import uids_to_u8u8, write_subset
from curate.io.inputs import numbered
from curate.io.samples import OPEN_CLIP_IMAGE_EXTENSIONS
from curate.io.tars import tar_bytes
from curate.run import sha256_hex, write_atomic, write_json_atomic, write_parquet_atomic
from curate.schema import column_names, validate
from curate.stage import Collected, SinkResult, SinkStage, StageParams, register
from curate.view import ViewPlan


class ExportParams(StageParams):
    """How many samples go in each output shard."""

    samples_per_shard: int = Field(10_000, ge=1)


@register
class ExportWebDataset(SinkStage):
    """Curated shards: <uid>.<image ext>, <uid>.txt, <uid>.json; every shard but the last full."""

    name = "export"
    Params = ExportParams
    output_schema = "export.v1"
    collect_columns = ()

    def needed_columns(self) -> tuple[str, ...]:
        """The sample columns the shards carry."""
        return tuple(c for c in column_names("export.v1") if c != "uid") + ("image", "meta")

    def collect(self, view: pa.Table) -> pa.Table:
        """How many samples of this shard are kept."""
        return pa.table({"kept": [view.column("drop_reason").null_count]})

    def reduce(self, collected: Collected) -> dict:
        """Kept counts per input shard, in order: enough to place every kept sample."""
        return {"inputs": list(collected), "kept": [t.column("kept")[0].as_py() for t in collected.values()],
                "samples_per_shard": self.params.samples_per_shard}

    def units(self, state: dict) -> list[str]:
        """One unit per output shard."""
        return numbered(-(-sum(state["kept"]) // state["samples_per_shard"]))

    def write_unit(self, unit: str, state: dict, out_dir: Path, view: ViewPlan) -> dict:
        """Write shards/<unit>.tar and shards/<unit>.parquet from the kept rows they cover."""
        size = state["samples_per_shard"]
        start = int(unit) * size
        rows = _kept_rows(state, view, start, start + size)
        samples = [_sample(row) for row in rows.to_pylist()]
        tar = tar_bytes(samples)
        write_atomic(out_dir / "shards" / f"{unit}.tar", tar)
        written = pa.array([_image_ext(sample) for sample in samples], pa.string())
        rows = rows.set_column(rows.column_names.index("image_format"), "image_format", written)
        meta = validate(rows.select(column_names("export.v1")), "export.v1", self.id)
        write_parquet_atomic(out_dir / "shards" / f"{unit}.parquet", meta)
        return {"rows": rows.num_rows, "output_sha256": sha256_hex(tar),
                "files": [f"shards/{unit}.tar", f"shards/{unit}.parquet"]}

    def finalize(self, state: dict, out_dir: Path) -> SinkResult:
        """sizes.json and subset.npy; shards left from an earlier, larger export are removed."""
        shards = out_dir / "shards"
        units = self.units(state)
        for stale in shards.glob("*"):
            if stale.stem not in units and stale.suffix in (".tar", ".parquet"):
                stale.unlink()
        sizes = {f"{u}.tar": pq.ParquetFile(shards / f"{u}.parquet").metadata.num_rows for u in units}
        write_json_atomic(shards / "sizes.json", sizes)
        parts = [uids_to_u8u8(pq.read_table(shards / f"{u}.parquet", columns=["uid"]).column(0).to_pylist())
                 for u in units]
        uids = np.concatenate(parts) if parts else uids_to_u8u8([])
        write_subset(out_dir / "subset.npy", uids)
        summary = {"curated_shards": str(shards), "shard_count": len(units),
                   "subset": str(out_dir / "subset.npy")}
        return SinkResult(summary, uids)


def _kept_rows(state: dict, view: ViewPlan, start: int, stop: int) -> pa.Table:
    """The kept rows with global kept-index in [start, stop), read row group by row group."""
    parts, offset = [], 0
    for shard, kept in zip(state["inputs"], state["kept"]):
        lo, hi = max(start - offset, 0), min(stop - offset, kept)
        offset += kept
        if lo >= hi:
            continue
        alive = view.drop_reasons(shard).is_null().to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(alive)[lo:hi]
        parts.append(_take_rows(view, shard, rows))
    return pa.concat_tables(parts)


def _take_rows(view: ViewPlan, shard: str, rows: np.ndarray) -> pa.Table:
    """Rows of a shard's view, reading only the row groups that hold them."""
    sizes = np.array(view.row_group_sizes(shard))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group_of_row = np.searchsorted(starts, rows, side="right") - 1
    groups = np.unique(group_of_row)
    read_starts = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]])
    positions = read_starts[np.searchsorted(groups, group_of_row)] + rows - starts[group_of_row]
    return view.read(shard, row_groups=groups.tolist()).take(pa.array(positions))


def _sample(row: dict) -> dict:
    """One WebDataset sample; formats open_clip cannot read are re-encoded as PNG."""
    image, ext = row["image"], row["image_format"]
    if ext not in OPEN_CLIP_IMAGE_EXTENSIONS:
        image, ext = _to_png(image), "png"
    info = {k: row[k] for k in ("uid", "key", "source", "url", "caption", "width", "height", "sha256")}
    if row.get("meta"):
        info["meta"] = json.loads(row["meta"])
    return {"__key__": row["uid"], ext: image, "txt": row["caption"].encode(),
            "json": json.dumps(info, sort_keys=True).encode()}


def _image_ext(sample: dict) -> str:
    return next(ext for ext in sample if ext in OPEN_CLIP_IMAGE_EXTENSIONS)


def _to_png(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
