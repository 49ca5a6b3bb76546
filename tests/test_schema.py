"""Schemas load from schemas/*.json and every stage output is validated against its own."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import SchemaError, ShardStage, load_pipeline, register, run_pipeline
from curate.schema import SCHEMA_DIR, load_schema, validate
from conftest import write_pipeline


def test_every_declared_schema_loads_with_its_version():
    names = sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))
    assert {"sample.v1", "decision.v1", "caption_stats.v1", "export.v1", "dropped.v1"} <= set(names)
    for name in names:
        schema = load_schema(name)
        assert schema.metadata[b"curate.schema"] == name.encode()
    assert load_schema("sample.v1").field("uid").nullable is False


def test_validate_names_stage_column_and_expected_type():
    table = pa.table({"uid": ["a"], "drop_reason": pa.array([1], pa.int64())})
    with pytest.raises(SchemaError, match=r"stage 'judge' wrote column 'drop_reason' as int64, expected string"):
        validate(table, "decision.v1", "judge")
    with pytest.raises(SchemaError, match=r"stage 'judge' did not write column 'drop_reason'"):
        validate(pa.table({"uid": ["a"]}), "decision.v1", "judge")
    with pytest.raises(SchemaError, match=r"column\(s\) \['extra'\]"):
        validate(pa.table({"uid": ["a"], "drop_reason": [None], "extra": [1]}), "decision.v1", "judge")
    with pytest.raises(SchemaError, match="null"):
        validate(pa.table({"uid": pa.array([None], pa.string()), "drop_reason": ["x"]}), "decision.v1", "judge")


def test_large_strings_from_polars_are_accepted_and_cast():
    table = pa.table({"uid": pa.array(["a"], pa.large_string()), "drop_reason": pa.array([None], pa.null())})
    assert validate(table, "decision.v1", "s").schema.field("uid").type == pa.string()


@register
class _WrongType(ShardStage):
    name = "test_wrong_type"
    output_schema = "caption_stats.v1"
    input_columns = ("caption",)

    def process(self, batch):
        n = batch.num_rows
        return pa.table({"uid": batch.column("uid"), "caption_chars": pa.array(["x"] * n),
                         "caption_words": pa.array([1] * n, pa.int32()),
                         "caption_alpha_fraction": pa.array([1.0] * n, pa.float32()),
                         "caption_unique_word_fraction": pa.array([1.0] * n, pa.float32())})


@register
class _DropsRows(ShardStage):
    name = "test_drops_rows"
    output_schema = "decision.v1"

    def process(self, batch):
        return pa.table({"uid": batch.column("uid").slice(1), "drop_reason": pa.nulls(batch.num_rows - 1, pa.string())})


@pytest.mark.parametrize("stage, message", [
    ("test_wrong_type", r"stage 'test_wrong_type' wrote column 'caption_chars' as string, expected int32"),
    ("test_drops_rows", r"stage 'test_drops_rows' must return one row per input row"),
])
def test_a_stage_writing_the_wrong_table_stops_the_run(tmp_path, pool, stage, message):
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run",
                              stages=[{"stage": stage}])
    with pytest.raises(SchemaError, match=message):
        run_pipeline(load_pipeline(pipeline))


@register
class _DropsEverything(ShardStage):
    """Writes decision.v1 without saying it decides: its drops must still count."""

    name = "test_drops_everything"
    output_schema = "decision.v1"

    def process(self, batch):
        return pa.table({"uid": batch.column("uid"), "drop_reason": pa.array(["nope"] * batch.num_rows)})


def test_a_stage_writing_drop_reason_is_a_decider_and_an_empty_export_is_valid(tmp_path, pool):
    stages = [{"stage": "test_drops_everything"}, {"stage": "export", "params": {"samples_per_shard": 10}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run", stages=stages)
    summary = run_pipeline(load_pipeline(pipeline))
    assert (summary["ingested"], summary["curated"], summary["dropped"]) == (120, 0, 120)
    assert summary["dropped_by_reason"] == {"empty_caption": 20, "nope": 100}
    shards = tmp_path / "run" / "export" / "shards"
    assert (shards / "sizes.json").read_text().strip() == "{}"
