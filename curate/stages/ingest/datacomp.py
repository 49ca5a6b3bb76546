"""Ingest a DataComp pool as DataComp ships it: metadata Parquet files (uid, url, text, sizes,
CLIP scores, face boxes, sha256) and, beside each, a row-aligned `.npz` of float16 embeddings
(b32_img, b32_txt, l14_img, l14_txt). No image is carried: the run is metadata-only, and the
embeddings become columns that semdedup, dedup_near, decontaminate and the image-based filter
read directly."""

from __future__ import annotations

import io
import zipfile
from functools import cached_property
from typing import Literal

import fsspec
import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.dedup.embeddings import encode
from curate.errors import InputError
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
        return npz_keys(npz_path(first))

    def _columns_beside(self, url: str, rows: int) -> dict[str, pa.ChunkedArray]:
        """One column per embedding key, from the .npz beside the metadata file."""
        if not self._embedding_keys:
            return {}
        matrices = read_npz(npz_path(url), self._embedding_keys, rows, url)
        return {key: encode(matrix) for key, matrix in matrices.items()}

    def read_shard(self, spec: ShardSpec, warnings: list[str]):
        """The same rows, one at a time (nothing here needs a row path of its own)."""
        yield from self.read_shard_table(spec, warnings).to_pylist()


def npz_path(parquet_url: str) -> str:
    """The .npz beside a metadata file, as DataComp names it: the same stem."""
    return parquet_url.rsplit(".parquet", 1)[0] + ".npz"


def npz_keys(path: str) -> list[str]:
    """The arrays an .npz holds, read from its zip directory only."""
    try:
        with fsspec.open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            return [name.removesuffix(".npy") for name in archive.namelist()]
    except FileNotFoundError:
        raise InputError(f"{path} is missing: DataComp's embeddings lie beside each metadata file, with the same "
                         f"stem; fetch it, or set embeddings: [] to ingest the metadata alone") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read {path} as an .npz: {error}") from None


def read_npz(path: str, keys: list[str], rows: int, parquet_url: str) -> dict[str, np.ndarray]:
    """The named arrays of an .npz, each checked to hold one float vector per metadata row."""
    present = npz_keys(path)
    missing = [key for key in keys if key not in present]
    if missing:
        raise InputError(f"{path} has no array {missing[0]!r} (it holds {', '.join(present)}); "
                         f"list the keys to read in embeddings")
    with fsspec.open(path, "rb") as handle:
        archive = np.load(io.BytesIO(handle.read()) if not _is_local(path) else handle, allow_pickle=False)
        matrices = {key: archive[key] for key in keys}
    for key, matrix in matrices.items():
        if matrix.ndim != 2 or matrix.shape[0] != rows or matrix.dtype.kind != "f":
            raise InputError(f"{path}: array {key!r} is {matrix.dtype} {matrix.shape}, but {parquet_url} has "
                             f"{rows} rows: an .npz must hold one float vector per row, in the file's order")
    return matrices


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")
