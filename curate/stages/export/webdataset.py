"""Write the kept samples as WebDataset shards of a fixed size, with their Parquet metadata,
a DataComp subset file (sorted u8,u8 uids) and sizes.json for open_clip's trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from curate.io.inputs import numbered
from curate.io.tars import tar_bytes
from curate.run import sha256_hex, write_atomic, write_json_atomic, write_parquet_atomic
from curate.schema import column_names, validate
from curate.stage import Collected, SinkStage, StageParams, register
from curate.stages.export.pixels import ImageFormat, export_image
from curate.view import ViewPlan


class ExportParams(StageParams):
    """How many samples go in each output shard, and how their images are written."""

    samples_per_shard: int = Field(10_000, ge=1, description="samples in every output shard but the last")
    image_format: ImageFormat = Field("original", description="original: images every reader decodes as curate "
                                      "scored them pass through, the others become PNG (lossless); png, jpg or "
                                      "webp: every image in that format")
    quality: int = Field(95, ge=1, le=100, description="jpg and webp quality")
    keep_alpha: bool = Field(False, description="keep the images as ingested, transparency included (readers that "
                             "drop alpha then see other pixels than curate scored)")

    @model_validator(mode="after")
    def _alpha_keeps_the_format(self) -> ExportParams:
        if self.keep_alpha and self.image_format != "original":
            raise ValueError("keep_alpha keeps the images as ingested: leave image_format at original")
        return self


@register
class ExportWebDataset(SinkStage):
    """Curated shards: <uid>.<image ext>, <uid>.txt, <uid>.json; every shard but the last full."""

    name = "export"
    Params = ExportParams
    output_schema = "export.v1"
    collect_columns = ()

    def needed_columns(self) -> tuple[str, ...]:
        """The sample columns the shards carry."""
        return tuple(c for c in column_names("export.v1") if c not in ("uid", "image_converted")) + ("image", "meta")

    def _sample(self, row: dict) -> tuple[dict, str, bool]:
        """One WebDataset sample, the extension of its image and whether the image was converted."""
        p = self.params
        image, ext, converted = export_image(row["image"], row["image_format"], p.image_format, p.quality, p.keep_alpha)
        info = {k: row[k] for k in ("uid", "key", "source", "url", "caption", "width", "height", "sha256")}
        if row.get("meta"):
            info["meta"] = json.loads(row["meta"])
        sample = {"__key__": row["uid"], ext: image, "txt": row["caption"].encode(),
                  "json": json.dumps(info, sort_keys=True).encode()}
        return sample, ext, converted

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
        samples, formats, converted = [], [], []
        for row in rows.to_pylist():
            sample, ext, changed = self._sample(row)
            samples.append(sample)
            formats.append(ext)
            converted.append(changed)
        tar = tar_bytes(samples)
        write_atomic(out_dir / "shards" / f"{unit}.tar", tar)
        rows = rows.set_column(rows.column_names.index("image_format"), "image_format", pa.array(formats, pa.string()))
        rows = rows.append_column("image_converted", pa.array(converted, pa.bool_()))
        meta = validate(rows.select(column_names("export.v1")), "export.v1", self.id)
        write_parquet_atomic(out_dir / "shards" / f"{unit}.parquet", meta)
        return {"rows": rows.num_rows, "output_sha256": sha256_hex(tar),
                "files": [f"shards/{unit}.tar", f"shards/{unit}.parquet"]}

    def unit_uids(self, unit: str, state: dict, out_dir: Path) -> pa.Array:
        """The uids of one written shard, from its metadata file."""
        return pq.read_table(out_dir / "shards" / f"{unit}.parquet", columns=["uid"]).column("uid").combine_chunks()

    def finalize(self, state: dict, out_dir: Path) -> dict:
        """sizes.json; shards left from an earlier, larger export are removed."""
        shards = out_dir / "shards"
        units = self.units(state)
        for stale in shards.glob("*"):
            if stale.stem not in units and stale.suffix in (".tar", ".parquet"):
                stale.unlink()
        sizes, converted = {}, 0
        for unit in units:
            table = pq.read_table(shards / f"{unit}.parquet", columns=["image_converted"])
            sizes[f"{unit}.tar"] = table.num_rows
            converted += pc.sum(table.column("image_converted")).as_py() or 0
        write_json_atomic(shards / "sizes.json", sizes)
        return {"curated_shards": str(shards), "shard_count": len(units), "images_converted": converted,
                "images": "as ingested (keep_alpha)" if self.params.keep_alpha else
                f"RGB as scored, transparency on white ({self.params.image_format})"}


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
