"""Ingest Parquet, CSV or JSONL tables of captions with image bytes, image paths, or only metadata
(DataComp's pools: captions, URLs, sizes and scores of images that are not carried)."""

from __future__ import annotations

import posixpath
from functools import cached_property
from typing import Iterator, Literal

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import Field

from curate.errors import ConfigError, InputError
from curate.io.inputs import expand_inputs, read_bytes
from curate.io.samples import given_uid, meta_text, sample_row
from curate.schema import load_schema
from curate.stage import ShardSpec, register
from curate.stages.ingest import columnar
from curate.stages.ingest.common import FileSource, IngestParams


class TableParams(IngestParams):
    """Which columns hold what; every other column is kept, in `meta` or as columns of its own."""

    caption_column: str = Field("caption", description="column holding the caption")
    image_column: str | None = Field("image", description="column of encoded image bytes; null, with no "
                                     "image_path_column either, for a table of metadata only (no images)")
    image_path_column: str | None = Field(
        None, description="column of image paths or URLs (relative to the table's folder)")
    key_column: str | None = Field("key", description="unique key; without it, the row number in its file")
    uid_column: str | None = Field("uid", description="column of 32-hex uids (DataComp's), kept as they are "
                                   "when the table has it; otherwise uids are made from source and key")
    url_column: str | None = Field("url", description="column holding the original URL, kept as provenance")
    width_column: str | None = Field(None, description="metadata-only tables: the column of image widths")
    height_column: str | None = Field(None, description="metadata-only tables: the column of image heights")
    sha256_column: str | None = Field(None, description="metadata-only tables: the column of image sha256s")
    extra_columns: Literal["meta", "columns"] = Field(
        "meta", description="meta: every other column in the JSON object `meta`; columns: each a column of "
        "its own, typed as in the first file (scores a later stage filters on); a name curate uses gets input_")
    image_url_schemes: list[str] = Field(["http", "https"], description="schemes an image path may name "
                                         "(s3, gs, ...); add file to allow absolute paths and paths outside "
                                         "the table's folder")

    @property
    def metadata_only(self) -> bool:
        """Rows describe images they do not carry: there is no image column in the outputs."""
        return self.image_column is None and self.image_path_column is None

    def mapped(self) -> set[str]:
        """The table columns these parameters give a meaning to."""
        return {c for c in (self.caption_column, self.image_column, self.image_path_column, self.key_column,
                            self.uid_column, self.url_column, self.width_column, self.height_column,
                            self.sha256_column) if c}


@register
class IngestTable(FileSource):
    """Read tables (one shard per file) whose rows are image-text pairs, or metadata only. Tables
    of image bytes or of metadata are read column at a time; image paths are fetched row by row."""

    name = "ingest_table"
    Params = TableParams

    def schema(self) -> pa.Schema:
        """sample.v1 (without `image` for a metadata-only table), with the extra columns of the
        first input when they are kept as columns."""
        return self._schema

    @cached_property
    def _schema(self) -> pa.Schema:
        base = load_schema(self.output_schema)
        fields = [f for f in base if not (f.name == "image" and self.params.metadata_only)]
        fields[-1:-1] = self._kept_fields()
        return pa.schema(fields, metadata=base.metadata)

    def _kept_fields(self) -> list[pa.Field]:
        """The columns of the output besides sample.v1's: the extra columns of the first input,
        when they are kept as columns."""
        if self.params.extra_columns != "columns":
            return []
        first = expand_inputs(self.params.inputs, self.params.dataset)[0].url
        extras = self._extras(table_schema(first, self.params.caption_column, self._text_columns()))
        return [pa.field(name, kind) for name, (_, kind) in extras.items()]

    def _text_columns(self) -> tuple[str | None, ...]:
        p = self.params
        return (p.key_column, p.url_column, p.image_path_column, p.uid_column, p.sha256_column)

    def _extras(self, schema: pa.Schema) -> dict[str, tuple[str, pa.DataType]]:
        """output name -> (table column, type) of the columns kept besides the mapped ones (a
        column of its own may not take a name sample.v1 uses; a key of `meta` may)."""
        taken = set(load_schema(self.output_schema).names) if self.params.extra_columns == "columns" else set()
        return {(f"input_{f.name}" if f.name in taken else f.name): (f.name, f.type)
                for f in schema if f.name not in self.params.mapped()}

    def _read(self, url: str) -> pa.Table:
        table = read_table(url, self.params.caption_column, self._text_columns())
        self._check_columns(table, url)
        self._check_beside(url, table.num_rows)
        return table

    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """One row per table row (what needs a fetch per row: image paths)."""
        url, source = spec.location
        table = self._read(url)
        extras = self._extras(table.schema)
        for index, row in enumerate(table.to_pylist()):
            yield self._row(source, url, index, row, extras)

    def read_shard_table(self, spec: ShardSpec, warnings: list[str]) -> pa.Table | None:
        """Every row at once, column by column (None for tables of image paths)."""
        if self.params.image_path_column:
            return None
        url, source = spec.location
        return self._columns(source, self._read(url), url)

    def _check_columns(self, table: pa.Table, url: str) -> None:
        p = self.params
        names = table.column_names
        if p.caption_column not in names:
            raise InputError(f"{url} has no caption column {p.caption_column!r}; set caption_column")
        if p.metadata_only:
            missing = [c for c in (p.width_column, p.height_column, p.sha256_column) if c and c not in names]
            if missing:
                raise InputError(f"{url} has no column {missing[0]!r}; name another or set it to null")
        elif p.image_column not in names and p.image_path_column not in names:
            raise InputError(f"{url} has neither image bytes ({p.image_column!r}) nor image paths "
                             f"({p.image_path_column!r}); set image_column or image_path_column, or both to "
                             f"null for a table of metadata only")

    def _row(self, source: str, url: str, index: int, row: dict, extras: dict) -> dict:
        p = self.params
        key = row.get(p.key_column) if p.key_column else None
        key = f"{index:09d}" if key is None else str(key)
        uid, problem = given_uid(row[p.uid_column]) if p.uid_column in row else (None, None)
        image = row.get(p.image_column) if p.image_column else None
        if image is None and p.image_path_column and row.get(p.image_path_column):
            path = str(row[p.image_path_column])
            problem = problem or refused_path(path, p.image_url_schemes)
            image = None if problem else read_bytes(_resolve(url, path))
        described = None
        if p.metadata_only:
            described = {name: row.get(column) if column else None for name, column in
                         (("width", p.width_column), ("height", p.height_column), ("sha256", p.sha256_column))}
        kept = {name: row[column] for name, (column, _) in extras.items()}
        meta = {k: v for k, v in kept.items() if v is not None} if p.extra_columns == "meta" else None
        sample = sample_row(source, key, image, row.get(p.caption_column), uid=uid, described=described,
                            url=row.get(p.url_column) if p.url_column else None,
                            meta=meta, checks=p.checks, problem=problem)
        if p.metadata_only:
            del sample["image"]
        return sample | (kept if p.extra_columns == "columns" else {})

    def _columns(self, source: str, table: pa.Table, url: str) -> pa.Table:
        """The sample columns of a whole table (see curate.stages.ingest.columnar)."""
        p = self.params
        column = lambda name: table.column(name) if name and name in table.column_names else None  # noqa: E731
        rows = table.num_rows
        key = columnar.keys(column(p.key_column), rows)
        if column(p.uid_column) is not None:
            uid, uid_problem = columnar.given_uids(column(p.uid_column), source, key)
        else:
            uid, uid_problem = columnar.made_uids(source, key), pa.nulls(rows, pa.string())
        caption, caption_problem = columnar.clean_captions(column(p.caption_column), p.max_caption_bytes)
        if p.metadata_only:
            described = {"image_format": None, "width": column(p.width_column),
                         "height": column(p.height_column), "sha256": column(p.sha256_column)}
            image = {name: pa.nulls(rows) if values is None else values for name, values in described.items()}
            image_problem = pa.nulls(rows, pa.string())
        else:
            image = columnar.image_columns(column(p.image_column), uid_problem.is_valid(), p.checks)
            image_problem = image.pop("problem")
        url_values = column(p.url_column)
        out = {"uid": uid, "key": key, "source": pa.array([source] * rows, pa.string()),
               "url": pa.nulls(rows) if url_values is None else url_values, "caption": caption, **image,
               "meta": self._meta(table) if p.extra_columns == "meta" else pa.nulls(rows),
               "drop_reason": columnar.first_problem(uid_problem, image_problem, caption_problem)}
        out |= {name: table.column(column_name) for name, (column_name, _) in self._extras(table.schema).items()
                if p.extra_columns == "columns"}
        return _conformed(out, self.stored_schema(), url)

    def _check_beside(self, url: str, rows: int) -> None:
        """Check files that lie beside the table and go with it (none here)."""

    def _meta(self, table: pa.Table) -> pa.Array:
        """The `meta` text of every row, as the row path writes it."""
        extras = self._extras(table.schema)
        kept = table.select([column for column, _ in extras.values()]).rename_columns(list(extras))
        return pa.array([meta_text({k: v for k, v in row.items() if v is not None}) for row in kept.to_pylist()],
                        pa.string())


def _conformed(columns: dict[str, pa.Array], schema: pa.Schema, url: str) -> pa.Table:
    """The columns as `schema` types them; a column of another type than the first file's is an
    error naming the file."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        try:
            arrays.append(values.cast(field.type) if values.type != field.type else values)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"{url}: column {field.name!r} is {values.type}, but {field.type} in the first "
                             f"input; give every file the same columns") from None
    return pa.Table.from_arrays(arrays, schema=schema)


def table_schema(url: str, caption_column: str, text_columns: tuple[str | None, ...]) -> pa.Schema:
    """The columns of a table file and their types, as read_table reads them (a Parquet file's
    from its footer)."""
    if url.lower().endswith(".parquet"):
        try:
            with fsspec.open(url, "rb") as handle:
                return _captions_as_bytes(pq.read_schema(handle).empty_table(), caption_column).schema
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"cannot read table {url}: {error}") from None
    return read_table(url, caption_column, text_columns).schema


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
