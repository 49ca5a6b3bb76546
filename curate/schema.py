"""Versioned Arrow schemas declared in schemas/*.json (the top-level folder of the project, shipped
inside the wheel as curate/schemas/), and validation of stage outputs."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

from curate.errors import SchemaError


def _schema_dir():
    """Inside an installed wheel, curate/schemas; in a checkout (editable installs too), the
    top-level schemas/ beside the package."""
    packaged = resources.files("curate") / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "schemas"


SCHEMA_DIR = _schema_dir()

_TYPES = {
    "string": pa.string(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "list<int32>": pa.list_(pa.int32()),
    "list<string>": pa.list_(pa.string()),
}


@lru_cache(maxsize=None)
def load_schema(name: str) -> pa.Schema:
    """Load the Arrow schema `name` ("sample.v1") from schemas/<name>.json."""
    path = SCHEMA_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.name.removesuffix(".json") for p in SCHEMA_DIR.iterdir()))
        raise SchemaError(f"unknown schema {name!r}; known schemas: {known}")
    spec = json.loads(path.read_text())
    fields = []
    for field in spec["fields"]:
        if field["type"] not in _TYPES:
            raise SchemaError(f"{path}: field {field['name']!r} has unknown type {field['type']!r}")
        fields.append(pa.field(field["name"], _TYPES[field["type"]], nullable=field["nullable"]))
    return pa.schema(fields, metadata={"curate.schema": name})


def validate(table: pa.Table, schema: str | pa.Schema, stage: str) -> pa.Table:
    """Check `table` against a schema (or the schema of that name); return it with the
    schema's column order.

    A mismatch raises SchemaError naming the stage, the column and the expected type.
    """
    schema = load_schema(schema) if isinstance(schema, str) else schema
    schema_name = (schema.metadata or {}).get(b"curate.schema", b"?").decode()
    extra = [name for name in table.column_names if schema.get_field_index(name) < 0]
    if extra:
        raise SchemaError(
            f"stage {stage!r} wrote column(s) {extra} that schema {schema_name} does not declare; "
            f"declare them in schemas/{schema_name}.json or drop them"
        )
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            raise SchemaError(
                f"stage {stage!r} did not write column {field.name!r} "
                f"(expected {field.type}) required by schema {schema_name}"
            )
        column = table.column(field.name)
        if column.type != field.type and not _castable(column.type, field.type):
            raise SchemaError(
                f"stage {stage!r} wrote column {field.name!r} as {column.type}, "
                f"expected {field.type} (schema {schema_name})"
            )
        if column.type != field.type:
            column = column.cast(field.type)
        if not field.nullable and column.null_count:
            raise SchemaError(
                f"stage {stage!r} wrote {column.null_count} null(s) in column {field.name!r}, "
                f"which schema {schema_name} declares non-nullable {field.type}"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Only representation changes are cast silently (polars writes large/view strings)."""
    if pa.types.is_null(actual):
        return True
    same_kind = {
        pa.string(): (pa.types.is_large_string, pa.types.is_string_view),
        pa.binary(): (pa.types.is_large_binary, pa.types.is_binary_view),
    }
    return any(check(actual) for check in same_kind.get(expected, ()))


def column_names(schema_name: str) -> list[str]:
    """The column names schema `schema_name` declares, in order."""
    return load_schema(schema_name).names
