"""Ingest Parquet, CSV or JSONL tables that carry image bytes or image paths plus captions."""

from __future__ import annotations

import posixpath
from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import Field

from curate.errors import ConfigError, InputError
from curate.io.inputs import read_bytes
from curate.io.samples import sample_row
from curate.stage import ShardSpec, register
from curate.stages.ingest.common import FileSource, IngestParams


class TableParams(IngestParams):
    """Which columns hold what; every other column is kept in `meta`."""

    caption_column: str = Field("caption", description="column holding the caption")
    image_column: str | None = Field("image", description="column of encoded image bytes")
    image_path_column: str | None = Field(
        None, description="column of image paths or URLs (relative to the table's folder)")
    key_column: str | None = Field("key", description="unique key; without it, the row number in its file")
    url_column: str | None = Field("url", description="column holding the original URL, kept as provenance")
    image_url_schemes: list[str] = Field(["http", "https"], description="schemes an image path may name "
                                         "(s3, gs, ...); add file to allow absolute paths and paths outside "
                                         "the table's folder")


@register
class IngestTable(FileSource):
    """Read tables (one shard per file) whose rows are image-text pairs."""

    name = "ingest_table"
    Params = TableParams

    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """One row per table row."""
        url, source = spec.location
        p = self.params
        table = read_table(url, p.caption_column, (p.key_column, p.url_column, p.image_path_column))
        self._check_columns(table, url)
        known = {c for c in (self.params.caption_column, self.params.image_column,
                             self.params.image_path_column, self.params.key_column,
                             self.params.url_column) if c}
        extra = [c for c in table.column_names if c not in known]
        for index, row in enumerate(table.to_pylist()):
            yield self._row(source, url, index, row, extra)

    def _check_columns(self, table: pa.Table, url: str) -> None:
        p = self.params
        if p.caption_column not in table.column_names:
            raise InputError(f"{url} has no caption column {p.caption_column!r}; set caption_column")
        has_bytes = p.image_column in table.column_names
        has_paths = p.image_path_column in table.column_names
        if not (has_bytes or has_paths):
            raise InputError(f"{url} has neither image bytes ({p.image_column!r}) nor image paths "
                             f"({p.image_path_column!r}); set image_column or image_path_column")

    def _row(self, source: str, url: str, index: int, row: dict, extra: list[str]) -> dict:
        p = self.params
        key = row.get(p.key_column) if p.key_column else None
        key = f"{index:09d}" if key is None else str(key)
        image = row.get(p.image_column) if p.image_column else None
        problem = None
        if image is None and p.image_path_column and row.get(p.image_path_column):
            path = str(row[p.image_path_column])
            problem = refused_path(path, p.image_url_schemes)
            image = None if problem else read_bytes(_resolve(url, path))
        meta = {c: row[c] for c in extra if row[c] is not None}
        return sample_row(source, key, image, row.get(p.caption_column),
                          url=row.get(p.url_column) if p.url_column else None,
                          meta=meta, checks=p.checks, problem=problem)


def read_table(url: str, caption_column: str, text_columns: tuple[str | None, ...],
               rows: tuple[int, int] | None = None) -> pa.Table:
    """Read a .parquet, .csv or .jsonl file (only rows [start, stop) when `rows` is given; a
    Parquet file then reads only the row groups that hold them). Captions come back as bytes,
    so bad UTF-8 is reported per row, and CSV keys, URLs and paths stay strings (a key 007 is
    not the number 7)."""
    suffix = url.rsplit(".", 1)[-1].lower()
    if suffix not in ("parquet", "csv", "tsv", "jsonl", "json"):
        raise ConfigError(f"{url}: unknown table format .{suffix}; use .parquet, .csv, .tsv or .jsonl")
    try:
        with fsspec.open(url, "rb") as handle:
            if suffix == "parquet":
                table = _read_parquet_rows(handle, rows)
            else:
                table = _read_text_table(handle, suffix, caption_column, text_columns)
                table = table.slice(rows[0], rows[1] - rows[0]) if rows else table
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"cannot read table {url}: {error}") from None
    return _captions_as_bytes(table, caption_column)


def _read_parquet_rows(handle, rows: tuple[int, int] | None) -> pa.Table:
    parquet = pq.ParquetFile(handle)
    if rows is None:
        return parquet.read()
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    groups = [i for i, (first, n) in enumerate(zip(starts, sizes)) if first < rows[1] and first + n > rows[0]]
    if not groups:
        return parquet.schema_arrow.empty_table()
    table = parquet.read_row_groups(groups)
    return table.slice(rows[0] - starts[groups[0]], rows[1] - rows[0])


def _read_text_table(handle, suffix: str, caption_column: str, text_columns) -> pa.Table:
    if suffix in ("jsonl", "json"):
        return pajson.read_json(handle)
    types = {column: pa.string() for column in text_columns if column}
    options = pacsv.ConvertOptions(column_types={**types, caption_column: pa.binary()})
    parse = pacsv.ParseOptions(delimiter="\t" if suffix == "tsv" else ",", newlines_in_values=True)
    return pacsv.read_csv(handle, parse_options=parse, convert_options=options)


def _captions_as_bytes(table: pa.Table, caption_column: str) -> pa.Table:
    """Arrow does not validate UTF-8 in files it reads: decoding captions is left to each row."""
    if caption_column not in table.column_names:
        return table
    index = table.column_names.index(caption_column)
    column = table.column(index)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        table = table.set_column(index, caption_column, column.cast(pa.binary()))
    return table


def refused_path(path: str, schemes: list[str]) -> str | None:
    """Why an image path of a table row may not be read, or None: a URL of a scheme not allowed
    (unsupported_url_scheme), or a local path that leaves the table's folder without the file
    scheme allowed (path_outside_folder), so a table cannot make the run read any local file."""
    scheme, found, _ = path.partition("://")
    if found:
        return None if scheme.lower() in schemes else "unsupported_url_scheme"
    outside = posixpath.isabs(path) or posixpath.normpath(path).split("/")[0] == ".."
    return "path_outside_folder" if outside and "file" not in schemes else None


def _resolve(table_url: str, path: str) -> str:
    """An image path relative to the table's folder, unless absolute or a URL."""
    if "://" in path or posixpath.isabs(path):
        return path
    return posixpath.join(posixpath.dirname(table_url), path)
