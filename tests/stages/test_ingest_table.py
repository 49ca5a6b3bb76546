"""ingest_table: Parquet / CSV / TSV / JSONL tables of image bytes or image paths plus captions,
driven through whole pipelines (ingest -> ... -> export) on the local executor."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import ConfigError, InputError, PipelineConfig, load_pipeline, run_pipeline
from conftest import exported_members, ingest_export_config, jpeg_bytes, png_bytes


# ---------------------------------------------------------------- helpers


def _config(run_dir: Path, ingest: dict, middle: list[dict] | None = None,
            samples_per_shard: int = 100) -> PipelineConfig:
    return ingest_export_config(run_dir, "ingest_table", ingest, middle, samples_per_shard)


def _ingested(run_dir: Path) -> list[dict]:
    """Every sample row the ingest stage wrote (all shards, in shard order)."""
    files = sorted((run_dir / "ingest_table").glob("*.parquet"))
    assert files, f"no ingest output in {run_dir}"
    return pq.read_table(files).to_pylist()


def _dropped(run_dir: Path) -> dict[str, dict]:
    return {row["uid"]: row for row in pq.read_table(run_dir / "dropped.parquet").to_pylist()}


CAPTIONS = {
    "k-red": "a red circle on a blue background",
    "k-green": "a small green square in the corner",
    "k-short": "x",
    "k-stars": "two yellow stars on a black sky",
}


def _parquet_rows() -> dict[str, list]:
    return {
        "key": list(CAPTIONS),
        "caption": list(CAPTIONS.values()),
        "image": [jpeg_bytes(1), png_bytes(2), jpeg_bytes(3), jpeg_bytes(4)],
        "url": ["http://example.invalid/1.jpg", None, "http://example.invalid/3.jpg", None],
        "aesthetic": [5.5, 6.25, None, 4.0],
        "license": ["cc-by", "cc0", "cc-by", "unknown"],
    }


# ---------------------------------------------------------------- Parquet


def test_parquet_with_image_bytes_extras_go_to_meta_and_export(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = _parquet_rows()
    pq.write_table(pa.table(rows), data / "part.parquet")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(data / "part.parquet")}, middle=[
        {"stage": "caption_stats"},
        {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 3"}}},
    ]))

    assert (summary["ingested"], summary["curated"], summary["dropped"]) == (4, 3, 1)
    assert summary["dropped_by_reason"] == {"too_few_words": 1}

    ingested = {row["key"]: row for row in _ingested(run_dir)}
    assert set(ingested) == set(CAPTIONS)
    for key, row in ingested.items():
        assert row["source"] == "part.parquet"
        assert row["caption"] == CAPTIONS[key]
        assert row["drop_reason"] is None
    # the known columns are not repeated in meta; every other column is, nulls left out
    assert json.loads(ingested["k-red"]["meta"]) == {"aesthetic": 5.5, "license": "cc-by"}
    assert json.loads(ingested["k-short"]["meta"]) == {"license": "cc-by"}
    assert ingested["k-red"]["url"] == "http://example.invalid/1.jpg"
    assert ingested["k-green"]["url"] is None
    assert ingested["k-green"]["image_format"] == "png"
    assert (ingested["k-red"]["width"], ingested["k-red"]["height"]) == (32, 32)

    exported = exported_members(run_dir)
    by_key = {key: ingested[key]["uid"] for key in ingested}
    assert set(exported) == {by_key["k-red"], by_key["k-green"], by_key["k-stars"]}
    green = exported[by_key["k-green"]]
    assert set(green) == {"png", "txt", "json"}
    assert green["png"] == rows["image"][1], "image bytes must pass through untouched"
    assert green["txt"].decode() == CAPTIONS["k-green"]
    info = json.loads(exported[by_key["k-red"]]["json"])
    assert info["key"] == "k-red" and info["source"] == "part.parquet"
    assert info["url"] == "http://example.invalid/1.jpg"
    assert info["meta"] == {"aesthetic": 5.5, "license": "cc-by"}
    assert exported[by_key["k-stars"]]["jpg"] == rows["image"][3]

    dropped = _dropped(run_dir)
    assert list(dropped) == [by_key["k-short"]]
    assert dropped[by_key["k-short"]]["drop_reason"] == "too_few_words"
    assert dropped[by_key["k-short"]]["dropped_by"] == "select"
    assert dropped[by_key["k-short"]]["key"] == "k-short"


def test_parquet_bad_rows_are_dropped_with_their_reason(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    table = pa.table({
        "key": ["ok", "no-image", "garbage", "empty", "nocap", "latin1"],
        "caption": pa.array([b"a fine caption here", b"no image bytes at all", b"bytes that are no image",
                             b"   ", None, b"caf\xe9 cr\xe8me"], pa.binary()),
        "image": [jpeg_bytes(1), None, b"\x00\x01 definitely not an image", jpeg_bytes(4),
                  jpeg_bytes(5), jpeg_bytes(6)],
    })
    pq.write_table(table, data / "bad.parquet")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(data / "bad.parquet")}))

    reasons = {row["key"]: row["drop_reason"] for row in _ingested(run_dir)}
    assert reasons == {"ok": None, "no-image": "missing_image", "garbage": "corrupt_image",
                       "empty": "empty_caption", "nocap": "missing_caption",
                       "latin1": "caption_not_utf8"}
    assert summary["curated"] == 1 and summary["dropped"] == 5
    dropped = _dropped(run_dir)
    assert {row["key"]: row["drop_reason"] for row in dropped.values()} == {
        k: v for k, v in reasons.items() if v is not None}
    assert {row["dropped_by"] for row in dropped.values()} == {"ingest_table"}


# ---------------------------------------------------------------- CSV / TSV


def _write_images(folder: Path) -> None:
    (folder / "images" / "nested").mkdir(parents=True)
    (folder / "images" / "red.jpg").write_bytes(jpeg_bytes(1))
    (folder / "images" / "nested" / "green.png").write_bytes(png_bytes(2))
    (folder / "images" / "stars.jpg").write_bytes(jpeg_bytes(3))


def test_csv_with_relative_image_paths_missing_image_and_bad_utf8(tmp_path, monkeypatch):
    data = tmp_path / "tables"
    data.mkdir()
    _write_images(data)
    raw = (
        b"key,caption,path,lang\n"
        b"r1,a red circle on a blue background,images/red.jpg,en\n"
        b"r2,a small green square in the corner,images/nested/green.png,de\n"
        b"r3,a picture whose file is gone,images/gone.jpg,fr\n"
        b"r4,caf\xe9 au lait \xff\xfe in latin-1,images/stars.jpg,fr\n"
    )
    (data / "pairs.csv").write_bytes(raw)
    run_dir = tmp_path / "run"
    # paths are relative to the CSV's folder, not to where the pipeline runs
    monkeypatch.chdir(tmp_path)
    summary = run_pipeline(_config(run_dir, {"inputs": str(data / "pairs.csv"), "image_path_column": "path"}))

    rows = {row["key"]: row for row in _ingested(run_dir)}
    assert {k: r["drop_reason"] for k, r in rows.items()} == {
        "r1": None, "r2": None, "r3": "missing_image", "r4": "caption_not_utf8"}
    assert rows["r2"]["image_format"] == "png"
    assert rows["r2"]["image"] == png_bytes(2)
    assert rows["r4"]["caption"] is None
    assert rows["r4"]["image_format"] == "jpg", "the image of a row with a bad caption is still inspected"
    assert rows["r3"]["caption"] == "a picture whose file is gone"
    # the path column is an input column, not metadata; other columns are
    assert json.loads(rows["r1"]["meta"]) == {"lang": "en"}

    assert (summary["ingested"], summary["curated"], summary["dropped"]) == (4, 2, 2)
    assert summary["dropped_by_reason"] == {"caption_not_utf8": 1, "missing_image": 1}
    dropped = _dropped(run_dir)
    assert {d["key"]: d["drop_reason"] for d in dropped.values()} == {
        "r3": "missing_image", "r4": "caption_not_utf8"}
    assert dropped[rows["r3"]["uid"]]["caption"] == "a picture whose file is gone"
    assert {d["dropped_by"] for d in dropped.values()} == {"ingest_table"}

    exported = exported_members(run_dir)
    assert set(exported) == {rows["r1"]["uid"], rows["r2"]["uid"]}
    assert exported[rows["r1"]["uid"]]["jpg"] == jpeg_bytes(1)
    assert exported[rows["r2"]["uid"]]["png"] == png_bytes(2)


def _run_text_table(tmp_path, name: str, text: str) -> tuple[Path, dict]:
    """Write a CSV/TSV table whose `path` column points at the test images, and ingest it."""
    data = tmp_path / "tables"
    data.mkdir()
    _write_images(data)
    (data / name).write_text(text)
    run_dir = tmp_path / "run"
    return run_dir, run_pipeline(_config(run_dir, {"inputs": str(data / name), "image_path_column": "path"}))


def test_tsv_is_read_with_tabs(tmp_path):
    run_dir, summary = _run_text_table(tmp_path, "pairs.tsv", "key\tcaption\tpath\n"
                                       "a\ta red circle, with a comma\timages/red.jpg\n"
                                       "b\ttwo yellow stars\timages/stars.jpg\n")
    assert summary["curated"] == 2
    captions = {row["key"]: row["caption"] for row in _ingested(run_dir)}
    assert captions == {"a": "a red circle, with a comma", "b": "two yellow stars"}


def test_csv_keys_are_kept_verbatim(tmp_path):
    run_dir, _ = _run_text_table(tmp_path, "pairs.csv", "key,caption,path\n"
                                 "007,a red circle on a blue background,images/red.jpg\n"
                                 "7,two yellow stars on a black sky,images/stars.jpg\n")
    assert sorted(row["key"] for row in _ingested(run_dir)) == ["007", "7"]


def test_csv_with_multiline_quoted_captions_larger_than_one_block(tmp_path):
    data = tmp_path / "tables"
    data.mkdir()
    _write_images(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "caption", "path"])
    rows = 2000
    for index in range(rows):
        caption = f"caption {index} first line {'word ' * 60}\nsecond line {'more ' * 60}"
        writer.writerow([f"k{index}", caption, "images/red.jpg"])
    (data / "big.csv").write_text(buffer.getvalue())
    assert (data / "big.csv").stat().st_size > 1 << 20
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(data / "big.csv"), "image_path_column": "path",
                                             "check_images": "header"}, samples_per_shard=10_000))
    assert summary["ingested"] == summary["curated"] == rows


# ---------------------------------------------------------------- JSONL


def test_jsonl_with_image_paths_and_nested_extras(tmp_path):
    data = tmp_path / "tables"
    data.mkdir()
    _write_images(data)
    lines = [
        {"key": "j1", "caption": "a red circle on a blue background", "path": "images/red.jpg",
         "url": "http://example.invalid/red.jpg", "tags": {"color": "red", "n": 1}},
        {"key": "j2", "caption": "a small green square in the corner", "path": "images/nested/green.png",
         "url": None, "tags": {"color": "green", "n": 2}},
        {"key": "j3", "caption": "", "path": "images/stars.jpg", "url": None, "tags": None},
        {"key": "j4", "caption": None, "path": "images/stars.jpg", "url": None, "tags": None},
    ]
    (data / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(data / "pairs.jsonl"), "image_path_column": "path"}))

    rows = {row["key"]: row for row in _ingested(run_dir)}
    assert {k: r["drop_reason"] for k, r in rows.items()} == {
        "j1": None, "j2": None, "j3": "empty_caption", "j4": "missing_caption"}
    assert rows["j1"]["url"] == "http://example.invalid/red.jpg"
    assert json.loads(rows["j1"]["meta"]) == {"tags": {"color": "red", "n": 1}}
    assert rows["j3"]["meta"] is None
    assert rows["j1"]["source"] == "pairs.jsonl"
    assert summary["curated"] == 2 and summary["dropped_by_reason"] == {
        "empty_caption": 1, "missing_caption": 1}
    exported = exported_members(run_dir)
    assert set(exported) == {rows["j1"]["uid"], rows["j2"]["uid"]}
    assert json.loads(exported[rows["j1"]["uid"]]["json"])["meta"] == {"tags": {"color": "red", "n": 1}}


# ---------------------------------------------------------------- uids and keys


def _uids_by_key(tmp_path: Path, name: str, table: pa.Table, **params) -> dict[str, str]:
    folder = tmp_path / name
    folder.mkdir()
    pq.write_table(table, folder / "pool.parquet")
    run_dir = tmp_path / f"run-{name}"
    run_pipeline(_config(run_dir, {"inputs": str(folder / "pool.parquet"), **params}))
    return {row["key"]: row["uid"] for row in _ingested(run_dir)}


def test_uid_depends_on_source_and_key_not_on_row_order(tmp_path):
    table = pa.table(_parquet_rows())
    order = [2, 0, 3, 1]
    shuffled = table.take(pa.array(order))
    assert shuffled.column("key").to_pylist() != table.column("key").to_pylist()

    first = _uids_by_key(tmp_path, "a", table)
    second = _uids_by_key(tmp_path, "b", shuffled)
    assert first == second
    assert len(set(first.values())) == 4
    assert all(len(uid) == 32 and int(uid, 16) >= 0 for uid in first.values())

    # a dataset prefix is part of the source name, so it keeps pools apart
    prefixed = _uids_by_key(tmp_path, "c", table, dataset="laion")
    assert set(prefixed) == set(first)
    assert not set(prefixed.values()) & set(first.values())


def test_table_without_key_column_uses_row_numbers(tmp_path):
    rows = _parquet_rows()
    del rows["key"]
    folder = tmp_path / "nokey"
    folder.mkdir()
    pq.write_table(pa.table(rows), folder / "pool.parquet")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(folder / "pool.parquet")}))
    ingested = _ingested(run_dir)
    assert [int(row["key"]) for row in ingested] == [0, 1, 2, 3]
    assert len({row["key"] for row in ingested}) == 4
    assert [row["caption"] for row in ingested] == rows["caption"]
    assert len({row["uid"] for row in ingested}) == 4
    assert summary["curated"] == 4

    # without keys, the uid follows the row number: the same bytes at row 0 keep row 0's uid
    reversed_rows = {name: list(reversed(values)) for name, values in rows.items()}
    again = tmp_path / "again"
    again.mkdir()
    pq.write_table(pa.table(reversed_rows), again / "pool.parquet")
    run_again = tmp_path / "run-again"
    run_pipeline(_config(run_again, {"inputs": str(again / "pool.parquet")}))
    other = _ingested(run_again)
    assert [row["uid"] for row in other] == [row["uid"] for row in ingested]
    assert [row["caption"] for row in other] == list(reversed(rows["caption"]))


def test_one_shard_per_file_named_after_the_file(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    rows = _parquet_rows()
    pq.write_table(pa.table(rows), folder / "first.parquet")
    pq.write_table(pa.table(rows).slice(0, 2), folder / "second.parquet")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(folder / "*.parquet")}))
    assert sorted(p.name for p in (run_dir / "ingest_table").glob("*.parquet")) == [
        "first.parquet", "second.parquet"]
    assert summary["stages"][0]["shards"] == 2 and summary["ingested"] == 6
    sources = {}
    for row in _ingested(run_dir):
        sources.setdefault(row["source"], []).append(row["key"])
    # the same key in two files is two samples with two uids
    assert sources == {"first.parquet": list(CAPTIONS), "second.parquet": list(CAPTIONS)[:2]}
    assert len({row["uid"] for row in _ingested(run_dir)}) == 6


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_table_without_caption_column_is_an_input_error_naming_the_file(tmp_path, fmt):
    folder = tmp_path / "tables"
    folder.mkdir()
    path = folder / f"nocaption.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"key": ["a"], "text": ["a caption in the wrong column"],
                                 "image": [jpeg_bytes(1)]}), path)
    elif fmt == "csv":
        path.write_text("key,text,path\na,a caption in the wrong column,x.jpg\n")
    else:
        path.write_text(json.dumps({"key": "a", "text": "a caption", "path": "x.jpg"}) + "\n")
    with pytest.raises(InputError) as error:
        run_pipeline(_config(tmp_path / "run", {"inputs": str(path), "image_path_column": "path"}))
    assert str(path) in str(error.value)
    assert "caption" in str(error.value)


def test_caption_column_parameter_names_another_column(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    pq.write_table(pa.table({"key": ["a"], "text": ["a caption in another column"],
                             "image": [jpeg_bytes(1)]}), folder / "t.parquet")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(folder / "t.parquet"), "caption_column": "text"}))
    assert summary["curated"] == 1
    assert _ingested(run_dir)[0]["caption"] == "a caption in another column"


def test_table_without_images_is_an_input_error(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    path = folder / "noimages.parquet"
    pq.write_table(pa.table({"key": ["a"], "caption": ["a caption"]}), path)
    with pytest.raises(InputError, match="image"):
        run_pipeline(_config(tmp_path / "run", {"inputs": str(path)}))


def test_unknown_table_extension_is_a_config_error(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    path = folder / "pairs.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a spreadsheet")
    with pytest.raises(ConfigError) as error:
        run_pipeline(_config(tmp_path / "run", {"inputs": str(path)}))
    assert "xlsx" in str(error.value) and str(path) in str(error.value)


def test_unreadable_parquet_is_an_input_error(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    path = folder / "broken.parquet"
    path.write_bytes(b"this is not parquet at all" * 10)
    with pytest.raises(InputError) as error:
        run_pipeline(_config(tmp_path / "run", {"inputs": str(path)}))
    assert str(path) in str(error.value)


def test_pipeline_file_with_ingest_table_runs_and_resumes(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    pq.write_table(pa.table(_parquet_rows()), folder / "t.parquet")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(json.dumps({  # JSON is YAML
        "name": "from-file", "run_dir": str(tmp_path / "run"), "executor": {"kind": "local"},
        "stages": [{"stage": "ingest_table", "params": {"inputs": str(folder / "t.parquet")}},
                   {"stage": "caption_stats"},
                   {"stage": "select", "params": {"filters": {"few_words": "caption_words >= 3"}}},
                   {"stage": "export", "params": {"samples_per_shard": 2}}]}))
    first = run_pipeline(load_pipeline(pipeline))
    assert (first["curated"], first["dropped"], first["outputs"]["shard_count"]) == (3, 1, 2)
    second = run_pipeline(load_pipeline(pipeline))
    assert [s["reused"] for s in second["stages"]] == [s["shards"] for s in second["stages"]]
    assert second["curated"] == 3
