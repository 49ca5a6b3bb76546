"""ingest_datacomp reads DataComp's metadata Parquet and its row-aligned .npz as they are."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import InputError
from curate.dedup.embeddings import decode
from curate.stage import stage_class
from curate.config import PipelineConfig
from curate.pipeline import run_pipeline
from curate.stages.ingest.datacomp import npz_path
from curate.view import UpstreamStage, plan_view

KEYS = ["b32_img", "b32_txt", "l14_img", "l14_txt"]


def _stage(inputs: str, **params):
    cls = stage_class("ingest_datacomp")
    return cls(cls.Params(inputs=[inputs], **params))


def test_pool_has_datacomps_layout(datacomp_pool):
    files = sorted((datacomp_pool / "metadata").glob("*.parquet"))
    assert len(files) == 3 and all(len(f.stem) == 32 for f in files)
    schema = pq.read_schema(files[0])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("uid", "string"), ("url", "string"), ("text", "string"), ("original_width", "int64"),
        ("original_height", "int64"), ("clip_b32_similarity_score", "float"), ("clip_l14_similarity_score", "float"),
        ("face_bboxes", "list<element: list<element: double>>"), ("sha256", "string")]
    arrays = np.load(npz_path(str(files[0])))
    assert {k: (arrays[k].dtype.str, arrays[k].shape) for k in arrays} == {
        "b32_img": ("<f2", (1000, 512)), "b32_txt": ("<f2", (1000, 512)),
        "l14_img": ("<f2", (1000, 768)), "l14_txt": ("<f2", (1000, 768))}
    uids = pl.read_parquet(files).get_column("uid")
    assert uids.str.contains(r"^[0-9a-f]{32}$").all() and uids.n_unique() == 2500
    # the scores are the cosines of the stored embeddings (to float16 rounding)
    score = np.einsum("ij,ij->i", arrays["l14_img"].astype(np.float32), arrays["l14_txt"].astype(np.float32))
    assert np.allclose(score, pq.read_table(files[0]).column("clip_l14_similarity_score").to_numpy(), atol=3e-3)


def test_rows_come_through_unchanged_and_embeddings_are_read_from_the_pool(datacomp_pool, tmp_path):
    stage = _stage(str(datacomp_pool / "metadata" / "*.parquet"))
    spec = stage.list_shards()[0]
    table = stage.read_shard_table(spec, [])
    path = spec.location[0].removeprefix("file://")
    source = pq.read_table(path)
    assert table.schema == stage.stored_schema() and "image" not in table.column_names
    assert stage.borrowed_columns() == tuple(KEYS) and not set(KEYS) & set(table.column_names)
    assert table.column("uid").equals(source.column("uid"))
    assert table.column("caption").to_pylist() == source.column("text").to_pylist()
    assert table.column("width").to_pylist() == source.column("original_width").to_pylist()
    assert table.column("face_bboxes").equals(source.column("face_bboxes"))
    assert table.column("drop_reason").null_count == table.num_rows
    # a run reads the embeddings through its view, from the pool's npz (never copied)
    run_pipeline(PipelineConfig(name="t", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_datacomp", "params": {"inputs": str(datacomp_pool / "metadata" / "*.parquet")}},
        {"stage": "export_subset"}]))
    ingested = pq.read_table(tmp_path / "run" / "ingest_datacomp" / f"{spec.shard}.parquet")
    assert not set(KEYS) & set(ingested.column_names)
    view = plan_view(str(tmp_path / "run"), [UpstreamStage("ingest_datacomp", stage.schema(), True)], tuple(KEYS), "x")
    arrays = np.load(npz_path(path))
    for rows, groups in ((slice(None), None), (slice(0, 1000), [0])):
        read = view.read(spec.shard, row_groups=groups)
        for key in KEYS:
            stored = np.frombuffer(b"".join(read.column(key).to_pylist()), "<f2").reshape(-1, arrays[key].shape[1])
            assert np.array_equal(stored, arrays[key][rows])
    assert np.allclose(np.linalg.norm(decode(read.column("l14_img")), axis=1), 1, atol=1e-6)


def test_only_the_named_embeddings_are_read(datacomp_pool):
    stage = _stage(str(datacomp_pool / "metadata" / "*.parquet"), embeddings=["l14_img"])
    names = stage.schema().names
    assert "l14_img" in names and "b32_img" not in names
    assert "b32_img" not in _stage(str(datacomp_pool / "metadata" / "*.parquet"), embeddings=[]).schema().names


def _copy(pool: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "metadata"
    shutil.copytree(pool / "metadata", folder)
    return folder


def test_missing_npz_is_an_error_naming_it(datacomp_pool, tmp_path):
    folder = _copy(datacomp_pool, tmp_path)
    victim = sorted(folder.glob("*.npz"))[1]
    victim.unlink()
    stage = _stage(str(folder / "*.parquet"))
    with pytest.raises(InputError, match=f"{victim.name} is missing.*embeddings: \\[\\]"):
        stage.read_shard_table(stage.list_shards()[1], [])


def test_misaligned_npz_is_an_error_naming_both_files(datacomp_pool, tmp_path):
    folder = _copy(datacomp_pool, tmp_path)
    victim = sorted(folder.glob("*.npz"))[0]
    arrays = dict(np.load(victim))
    np.savez(victim, **{key: value[:-1] for key, value in arrays.items()})
    stage = _stage(str(folder / "*.parquet"))
    with pytest.raises(InputError, match=f"{victim.name}.*999.*{victim.stem}.parquet has 1000 rows"):
        stage.read_shard_table(stage.list_shards()[0], [])


def test_npz_without_a_named_key_is_an_error(datacomp_pool, tmp_path):
    folder = _copy(datacomp_pool, tmp_path)
    stage = _stage(str(folder / "*.parquet"), embeddings=["vit_h_img"])
    with pytest.raises(InputError, match="no array 'vit_h_img'"):
        stage.read_shard_table(stage.list_shards()[0], [])


def test_builder_writes_the_same_files_for_any_number_of_workers(tmp_path):
    from curate.pools import build

    for workers in (1, 2):
        build("datacomp-like", tmp_path / str(workers), n=300, base="synthetic", limit=20, weights=None,
              samples_per_shard=100, workers=workers)
    one, two = (sorted((tmp_path / w / "metadata").iterdir()) for w in ("1", "2"))
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 6
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two))
    assert pa.concat_tables([pq.read_table(p) for p in one if p.suffix == ".parquet"]).num_rows == 300


def test_borrowed_embeddings_of_some_row_groups_are_those_rows(tmp_path):
    from curate.pools import build

    build("datacomp-like", tmp_path / "pool", n=4500, base="synthetic", limit=10, weights=None,
          samples_per_shard=4500)
    run_pipeline(PipelineConfig(name="t", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_datacomp", "params": {"inputs": str(tmp_path / "pool" / "metadata" / "*.parquet"),
                                                "embeddings": ["b32_img"]}},
        {"stage": "export_subset"}]))
    stage = _stage(str(tmp_path / "pool" / "metadata" / "*.parquet"), embeddings=["b32_img"])
    [spec] = stage.list_shards()
    view = plan_view(str(tmp_path / "run"), [UpstreamStage("ingest_datacomp", stage.schema(), True)], ("b32_img",), "x")
    assert view.row_group_sizes(spec.shard) == [2048, 2048, 404]
    read = view.read(spec.shard, row_groups=[0, 2])
    expected = np.load(npz_path(spec.location[0].removeprefix("file://")))["b32_img"]
    stored = np.frombuffer(b"".join(read.column("b32_img").to_pylist()), "<f2").reshape(-1, 512)
    assert np.array_equal(stored, np.concatenate([expected[:2048], expected[4096:]]))


def test_a_changed_npz_changes_the_shards_fingerprint(datacomp_pool, tmp_path):
    folder = _copy(datacomp_pool, tmp_path)
    stage = lambda: _stage(str(folder / "*.parquet"))  # noqa: E731
    before = [s.fingerprint for s in stage().list_shards()]
    victim = sorted(folder.glob("*.npz"))[2]
    arrays = dict(np.load(victim))
    np.savez(victim, **{key: -value for key, value in arrays.items()})
    after = [s.fingerprint for s in stage().list_shards()]
    assert before[:2] == after[:2] and before[2] != after[2]


def test_borrowed_embeddings_are_read_for_alive_rows_only(datacomp_pool, tmp_path):
    run_pipeline(PipelineConfig(name="t", run_dir=str(tmp_path / "run"), executor={"kind": "local"}, stages=[
        {"stage": "ingest_datacomp", "params": {"inputs": str(datacomp_pool / "metadata" / "*.parquet")}},
        {"stage": "select", "params": {"filters": {"low": "clip_l14_similarity_score > -0.09"}}},
        {"stage": "export_subset"}]))
    stage = _stage(str(datacomp_pool / "metadata" / "*.parquet"))
    spec = stage.list_shards()[0]
    upstream = [UpstreamStage("ingest_datacomp", stage.schema(), True),
                UpstreamStage("select", stage_class("select")(stage_class("select").Params(
                    filters={"low": "x > 0"})).schema(), True)]
    read = plan_view(str(tmp_path / "run"), upstream, ("l14_img",), "x").read(spec.shard)
    alive = read.column("drop_reason").is_null().to_numpy(zero_copy_only=False)
    assert 0 < alive.sum() < len(alive)
    assert np.array_equal(read.column("l14_img").is_valid().to_numpy(zero_copy_only=False), alive)
    expected = np.load(npz_path(spec.location[0].removeprefix("file://")))["l14_img"][alive]
    stored = np.frombuffer(b"".join(read.column("l14_img").drop_null().to_pylist()), "<f2").reshape(-1, 768)
    assert np.array_equal(stored, expected)


def test_builder_can_narrow_the_embeddings_and_give_most_rows_an_image_of_their_own(tmp_path):
    from curate.pools import build

    build("datacomp-like", tmp_path / "pool", n=400, base="synthetic", limit=10, weights=None,
          samples_per_shard=400, dimensions=16, repeated_images=0.25)
    [npz] = (tmp_path / "pool" / "metadata").glob("*.npz")
    arrays = np.load(npz)
    assert {arrays[key].shape for key in ("b32_img", "b32_txt", "l14_img", "l14_txt")} == {(400, 16)}
    sha = pq.read_table(npz.with_suffix(".parquet")).column("sha256").to_pylist()
    repeated = sum(1 for value in sha if sha.count(value) > 1)
    assert 50 < repeated < 150 and len(set(sha)) > 250  # about a quarter share one of 10 base images
