"""Keep the samples that pass named polars (SQL) predicates; a failed filter's name is the
drop reason. Scores stay in the sidecars, so re-thresholding reruns only this stage."""

from __future__ import annotations

import re

import polars as pl
import pyarrow as pa
from pydantic import Field, field_validator

from curate.errors import ConfigError, polars_message
from curate.stage import ShardStage, StageParams, Threshold, register


class SelectParams(StageParams):
    """filters: name -> predicate that must be TRUE to keep (null counts as false), in order."""

    filters: dict[str, str] = Field(min_length=1, description="drop reason -> SQL predicate a kept sample "
                                    "satisfies, tried in order")

    @field_validator("filters")
    @classmethod
    def _parse(cls, filters: dict[str, str]) -> dict[str, str]:
        for name, predicate in filters.items():
            if not name.replace("_", "").isalnum():
                raise ValueError(f"filter name {name!r} must be letters, digits and _ (it is the drop reason)")
            try:
                pl.sql_expr(predicate)
            except Exception as error:
                raise ValueError(f"filter {name!r}: cannot parse {predicate!r}: {error}") from None
        return filters

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COLUMN_FIRST = re.compile(rf"^\s*\"?(\w+)\"?\s*(>=|>|<=|<)\s*({_NUMBER})\s*$")
_NUMBER_FIRST = re.compile(rf"^\s*({_NUMBER})\s*(>=|>|<=|<)\s*\"?(\w+)\"?\s*$")
_MIRROR = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


def simple_cut(name: str, predicate: str) -> Threshold | None:
    """A predicate of the form `column OP number` (or `number OP column`) as a Threshold;
    None for anything richer."""
    if match := _COLUMN_FIRST.match(predicate):
        column, keeps, value = match.groups()
        return Threshold(column, float(value), keeps, name)
    if match := _NUMBER_FIRST.match(predicate):
        value, keeps, column = match.groups()
        return Threshold(column, float(value), _MIRROR[keeps], name)
    return None


@register
class Select(ShardStage):
    """Mark each alive sample kept, or dropped with the name of the first filter it fails."""

    name = "select"
    Params = SelectParams
    output_schema = "decision.v1"

    def needed_columns(self) -> tuple[str, ...]:
        """The columns the predicates mention."""
        names: list[str] = []
        for predicate in self.params.filters.values():
            names += [c for c in pl.sql_expr(predicate).meta.root_names() if c not in names]
        return tuple(names)

    def thresholds(self, details: dict | None) -> list[Threshold]:
        """The filters that are plain cuts on one column."""
        cuts = (simple_cut(name, predicate) for name, predicate in self.params.filters.items())
        return [cut for cut in cuts if cut is not None]

    def check_view(self, schema: pa.Schema) -> None:
        """Every predicate must evaluate to true/false over the view's column types."""
        empty = pl.from_arrow(schema.empty_table())
        for name, predicate in self.params.filters.items():
            try:
                result = empty.select(pl.sql_expr(predicate)).to_series()
            except pl.exceptions.PolarsError as error:
                raise ConfigError(f"stage {self.id!r}, filter {name!r} ({predicate}): {polars_message(error)}") from None
            if result.dtype != pl.Boolean:
                raise ConfigError(f"stage {self.id!r}, filter {name!r} ({predicate}) gives {result.dtype}, "
                                  f"not true/false; write a comparison")

    def process(self, batch: pa.RecordBatch) -> pa.Table:
        """uid + drop_reason (the first failing filter's name, null when kept). A NaN score is
        missing, like a null one: it passes no filter (polars would order NaN above every number)."""
        reason = pl.lit(None, dtype=pl.String)
        for name, predicate in reversed(self.params.filters.items()):
            passes = pl.sql_expr(predicate).fill_null(False)
            reason = pl.when(passes).then(reason).otherwise(pl.lit(name))
        frame = pl.from_arrow(batch).with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
        frame = frame.select("uid", reason.alias("drop_reason"))
        return frame.to_arrow()
