"""ingest_table read column at a time gives exactly the rows the row-by-row path gives: uids,
keys, caption checks, image checks and drop reasons, on tables built to hit every edge."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import InputError
from curate.stage import stage_class
from curate.tasks import _from_rows
from conftest import jpeg_bytes, png_bytes

CAPTIONS = [b"a red circle", b"  padded with spaces \n", "\u3000ideographic space\u3000".encode(),
            b"trailing separator\x1c", "caf\u00e9".encode(), b"   ", b"", None, b"\xff\xfe not utf-8",
            b"x" * 300, "\u00a0nbsp\u00a0".encode(), b"\tq\t"]
UIDS = ["0123456789abcdef0123456789ABCDEF", None, "not-a-uid", "00000000000000000000000000000001",
        "ffffffffffffffffffffffffffffffff", "0123456789abcdef0123456789abcdef0", "fedcba98765432100123456789abcdef",
        "11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333",
        "44444444444444444444444444444444", "55555555555555555555555555555555"]


def _images() -> list:
    return [jpeg_bytes(1), png_bytes(2), b"", None, b"<html>not an image</html>", b"\x89PNG broken",
            jpeg_bytes(7), png_bytes(8), jpeg_bytes(9), jpeg_bytes(10, size=64), jpeg_bytes(11), png_bytes(12)]


def _both_paths(stage, path) -> tuple[pa.Table, pa.Table]:
    [spec] = stage.list_shards()
    by_rows = _from_rows(stage, stage.read_shard(spec, []))
    by_columns = stage.read_shard_table(spec, [])
    assert by_columns is not None
    return by_rows, by_columns


def _stage(params: dict):
    cls = stage_class("ingest_table")
    return cls(cls.Params(**params))


@pytest.mark.parametrize("extra_columns", ["meta", "columns"])
@pytest.mark.parametrize("with_uids", [False, True])
def test_columnar_and_row_paths_write_identical_rows_with_images(tmp_path, extra_columns, with_uids):
    table = {"key": ["a", None, "c", "d", None, "f", "g", "h", "i", "j", "k", "l"],
             "caption": CAPTIONS, "image": _images(),
             "url": [f"http://example.invalid/{i}" if i % 3 else None for i in range(12)],
             "score": [0.5, None, 1.25, 2.0, 3.0, None, 1e-9, 7.0, 8.0, 9.0, 10.0, 11.0],
             "source": ["web"] * 6 + [None] * 6,
             "tags": [["x", "y"], [], None, ["z"], None, None, None, None, None, None, None, None]}
    if with_uids:
        table["uid"] = UIDS
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(table), path, row_group_size=5)
    stage = _stage({"inputs": [str(path)], "extra_columns": extra_columns, "max_caption_bytes": 200,
                    "check_images": "header"})
    by_rows, by_columns = _both_paths(stage, path)
    assert by_rows.to_pylist() == by_columns.to_pylist()
    assert by_columns.schema == stage.stored_schema() == stage.schema()
    reasons = by_columns.column("drop_reason").to_pylist()
    seen = {"missing_image", "not_an_image"} | ({"empty_image", "corrupt_image"} if not with_uids else set())
    assert seen <= set(reasons)
    if with_uids:
        assert by_columns.column("uid")[0].as_py() == "0123456789abcdef0123456789abcdef"
        assert reasons[1] == "missing_uid" and reasons[2] == "bad_uid" and reasons[5] == "bad_uid"
    if extra_columns == "columns":
        assert by_columns.column("input_source").to_pylist()[:2] == ["web", "web"]
        assert by_columns.schema.field("score").type == pa.float64()
    else:
        assert json.loads(by_columns.column("meta")[0].as_py()) == {"score": 0.5, "source": "web", "tags": ["x", "y"]}


def test_caption_checks_match_the_row_path_on_every_edge(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"caption": CAPTIONS, "width": list(range(12)), "height": [5] * 12}), path)
    stage = _stage({"inputs": [str(path)], "image_column": None, "key_column": None,
                    "width_column": "width", "height_column": "height", "max_caption_bytes": 200})
    by_rows, by_columns = _both_paths(stage, path)
    assert by_rows.to_pylist() == by_columns.to_pylist()
    captions = by_columns.column("caption").to_pylist()
    assert captions[:5] == ["a red circle", "padded with spaces", "ideographic space", "trailing separator", "café"]
    assert by_columns.column("drop_reason").to_pylist()[5:10] == [
        "empty_caption", "empty_caption", "missing_caption", "caption_not_utf8", "caption_too_long"]
    assert captions[10:] == ["nbsp", "q"]


def test_metadata_only_table_has_no_image_column_and_no_image_drops(tmp_path):
    path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({
        "uid": UIDS[:4], "text": ["a dog", "a cat", "a cow", "a hen"], "url": ["http://x.invalid/1"] * 4,
        "original_width": [640, 320, None, 1024], "original_height": [480, 200, 100, 768],
        "sha256": ["ab" * 32] * 4, "clip_b32_similarity_score": [0.3, 0.2, None, 0.31]}), path)
    stage = _stage({"inputs": [str(path)], "caption_column": "text", "image_column": None, "key_column": None,
                    "width_column": "original_width", "height_column": "original_height",
                    "sha256_column": "sha256", "extra_columns": "columns"})
    by_rows, by_columns = _both_paths(stage, path)
    assert by_rows.to_pylist() == by_columns.to_pylist()
    assert "image" not in by_columns.column_names
    assert by_columns.column("width").to_pylist() == [640, 320, None, 1024]
    assert by_columns.column("sha256").to_pylist() == ["ab" * 32] * 4
    assert by_columns.column("clip_b32_similarity_score").to_pylist() == [0.3, 0.2, None, 0.31]
    assert by_columns.column("drop_reason").to_pylist() == [None, "missing_uid", "bad_uid", None]


def test_a_later_file_with_other_column_types_is_an_error_naming_it(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"caption": ["a"], "score": [1.5]}), first)
    pq.write_table(pa.table({"caption": ["b"], "score": [["not", "a", "number"]]}), second)
    stage = _stage({"inputs": [str(tmp_path / "*.parquet")], "image_column": None, "extra_columns": "columns"})
    specs = stage.list_shards()
    assert stage.read_shard_table(specs[0], []).num_rows == 1
    with pytest.raises(InputError, match=r"b\.parquet.*'score'"):
        stage.read_shard_table(specs[1], [])


def test_named_size_column_missing_is_an_input_error(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"caption": ["a"]}), path)
    stage = _stage({"inputs": [str(path)], "image_column": None, "width_column": "original_width"})
    with pytest.raises(InputError, match="original_width"):
        stage.read_shard_table(stage.list_shards()[0], [])
