"""Ingest a DataComp pool as DataComp ships it: metadata Parquet files (uid, url, text, sizes,
CLIP scores, face boxes, sha256) and, beside each, a row-aligned `.npz` of float16 embeddings
(b32_img, b32_txt, l14_img, l14_txt). No image is carried: the run is metadata-only. The
embeddings are columns that semdedup, dedup_near and the image-based filter read like any other,
but they are borrowed: read from the pool's .npz where it lies, never copied into the run."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import pyarrow as pa
from pydantic import Field

from curate.io.inputs import url_fingerprint
from curate.io.npz import check_npz, npz_shapes
from curate.run import stable_hash
from curate.stage import ShardSpec, register
from curate.stages.ingest.table import IngestTable, TableParams


class DataCompParams(TableParams):
    """DataComp's column names by default; which embeddings to read from the .npz files."""

    caption_column: str = Field("text", description="column holding the caption")
    image_column: str | None = Field(None, description="DataComp's pools carry no images")
    key_column: str | None = Field(None, description="DataComp rows have no key: the row number is used")
    width_column: str | None = Field("original_width", description="the column of image widths")
    height_column: str | None = Field("original_height", description="the column of image heights")
    sha256_column: str | None = Field("sha256", description="the column of image sha256s")
    extra_columns: Literal["meta", "columns"] = Field("columns", description="scores and face boxes as columns of their own")
    embeddings: list[str] | None = Field(None, description=".npz keys to read as embedding columns (null: every "
                                         "key of the first file's .npz; []: read no .npz)")


@register
class IngestDataComp(IngestTable):
    """DataComp's metadata Parquet + .npz embeddings, column at a time."""

    name = "ingest_datacomp"
    Params = DataCompParams

    def _kept_fields(self) -> list[pa.Field]:
        """The metadata's extra columns, then a binary column of float16 vectors per embedding."""
        return super()._kept_fields() + [pa.field(key, pa.binary()) for key in self._embedding_keys]

    @cached_property
    def _embedding_keys(self) -> list[str]:
        if self.params.embeddings is not None:
            return list(self.params.embeddings)
        first = self.list_shards()[0].location[0]
        return list(npz_shapes(npz_path(first)))

    def borrowed_columns(self) -> tuple[str, ...]:
        """The embeddings: read from the pool's .npz files where they lie, never copied."""
        return tuple(self._embedding_keys)

    def borrowed_files(self, spec: ShardSpec) -> dict[str, dict]:
        """The shard's .npz, for each embedding column."""
        path = npz_path(spec.location[0])
        return {key: {"file": path, "key": key, "fingerprint": spec.fingerprint} for key in self._embedding_keys}

    def list_shards(self) -> list[ShardSpec]:
        """One shard per metadata file; its fingerprint covers the .npz beside it too."""
        specs = super().list_shards()
        if self.params.embeddings == []:
            return specs
        return [ShardSpec(s.shard, s.location, stable_hash([s.fingerprint, url_fingerprint(npz_path(s.location[0]))]))
                for s in specs]

    def _check_beside(self, url: str, rows: int) -> None:
        """The .npz beside the file must hold one vector per row for every embedding read."""
        if self._embedding_keys:
            check_npz(npz_path(url), self._embedding_keys, rows, url)


def npz_path(parquet_url: str) -> str:
    """The .npz beside a metadata file, as DataComp names it: the same stem."""
    return parquet_url.rsplit(".parquet", 1)[0] + ".npz"
