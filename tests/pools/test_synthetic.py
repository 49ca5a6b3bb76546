"""Tests for the procedural synthetic pool generator."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from curate.pools import synthetic
from curate.pools.synthetic import SHAPES, build_synthetic_pool, make_sample


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tar_members(path: Path) -> dict[str, bytes]:
    members = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m)
            assert data is not None, m.name
            members[m.name] = data.read()
    return members


@pytest.fixture(scope="module")
def wds_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wds")
    build_synthetic_pool(out, 400, samples_per_shard=150, seed=7, image_size=32,
                         duplicate_fraction=0.1, junk_fraction=0.1)
    return out


def _truth(pool: Path) -> list[dict]:
    meta = json.loads((pool / "_pool.json").read_text())
    return pa.concat_tables([pq.read_table(pool / f"{s}.parquet") for s in meta["shards"]]).to_pylist()


def test_same_seed_is_byte_identical_across_worker_counts(tmp_path: Path) -> None:
    serial, parallel, other = tmp_path / "w1", tmp_path / "w2", tmp_path / "seed1"
    seen: list[int] = []
    build_synthetic_pool(serial, 250, samples_per_shard=100, seed=3, workers=1)
    build_synthetic_pool(parallel, 250, samples_per_shard=100, seed=3, workers=2, progress=seen.append)
    build_synthetic_pool(other, 250, samples_per_shard=100, seed=4, workers=1)
    assert _tree(serial) == _tree(parallel)
    assert sorted(seen) == [50, 100, 100]
    for name in ("00000.tar", "00000.parquet", "00002.tar"):
        assert (serial / name).read_bytes() != (other / name).read_bytes()


def test_sample_content_does_not_depend_on_sharding(tmp_path: Path) -> None:
    build_synthetic_pool(tmp_path / "a", 120, samples_per_shard=7, fmt="parquet", duplicate_fraction=0.2)
    build_synthetic_pool(tmp_path / "b", 120, samples_per_shard=1000, fmt="parquet", duplicate_fraction=0.2)
    assert _truth(tmp_path / "a") == _truth(tmp_path / "b")
    assert make_sample(0, 57, duplicate_fraction=0.2) == make_sample(0, 57, duplicate_fraction=0.2)


def test_progress_reports_each_shard_serially(tmp_path: Path) -> None:
    seen: list[int] = []
    build_synthetic_pool(tmp_path, 25, samples_per_shard=10, progress=seen.append)
    assert seen == [10, 10, 5]


def test_tar_members_are_ordered_and_normalised(wds_pool: Path) -> None:
    with tarfile.open(wds_pool / "00001.tar") as tar:
        members = tar.getmembers()
    keys = [f"{i:09d}" for i in range(150, 300)]
    assert [m.name for m in members] == [f"{k}.{ext}" for k in keys for ext in ("jpg", "txt", "json")]
    for m in members:
        assert (m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) == (0, 0o444, 0, 0, "", "")
        assert m.isreg()


def test_hand_written_tar_matches_tarfile_ustar(wds_pool: Path) -> None:
    written = (wds_pool / "00002.tar").read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in _tar_members(wds_pool / "00002.tar").items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "", ""
            tar.addfile(info, io.BytesIO(data))
    assert written == buf.getvalue()


def test_webdataset_reads_every_sample(wds_pool: Path) -> None:
    urls = [str(wds_pool / f"{s:05d}.tar") for s in range(3)]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"{i:09d}" for i in range(400)]
    for s in samples:
        assert {"jpg", "txt", "json"} <= set(s)
        img = Image.open(io.BytesIO(s["jpg"]))
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (32, 32))
        assert "exif" not in img.info and not img.getexif()
        meta = json.loads(s["json"])
        assert meta["key"] == s["__key__"] and meta["caption"] == s["txt"].decode("utf-8")


def test_planted_duplicates_are_exact_copies_of_originals(wds_pool: Path) -> None:
    rows = {r["key"]: r for r in _truth(wds_pool)}
    files: dict[str, bytes] = {}
    for s in range(3):
        files.update(_tar_members(wds_pool / f"{s:05d}.tar"))
    dups = [r for r in rows.values() if r["duplicate_of"]]
    assert 26 <= len(dups) <= 56  # expected 40 of 400
    for r in dups:
        src = rows[r["duplicate_of"]]
        assert src["key"] < r["key"] and src["duplicate_of"] is None
        assert files[f"{r['key']}.jpg"] == files[f"{src['key']}.jpg"]
        assert files[f"{r['key']}.txt"] == files[f"{src['key']}.txt"]
        assert (r["shape"], r["color"], r["background"], r["is_junk"]) == (
            src["shape"], src["color"], src["background"], src["is_junk"])
    originals = [k for k, r in rows.items() if r["duplicate_of"] is None]
    digests = {hashlib.sha256(files[f"{k}.jpg"]).digest() for k in originals}
    assert len(digests) == len(originals), "originals must not collide, or ground truth is wrong"


def test_junk_captions_are_flagged_and_clean_captions_describe_the_image(wds_pool: Path) -> None:
    rows = _truth(wds_pool)
    junk = [r for r in rows if r["is_junk"]]
    assert 24 <= len(junk) <= 56  # expected ~38 of 400: 10% of originals, inherited by copies
    for r in rows:
        words = r["caption"].replace(",", " ").split()
        described = r["shape"] in words and r["color"] in words
        assert described != r["is_junk"], r
        assert r["color"] != r["background"] and r["shape"] in SHAPES


def test_parquet_ground_truth_schema(wds_pool: Path) -> None:
    table = pq.read_table(wds_pool / "00000.parquet")
    assert table.schema.field("is_junk").type == pa.bool_()
    assert table.schema.field("width").type == pa.int32()
    assert table.schema.field("duplicate_of").type == pa.string()
    assert "image" not in table.column_names
    assert table.num_rows == 150 and set(table.column("height").to_pylist()) == {32}


def test_webdataset_layout_and_manifest(tmp_path: Path) -> None:
    meta = build_synthetic_pool(tmp_path, 30, samples_per_shard=20, seed=5, image_size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00000.parquet", "00000.tar", "00001.parquet", "00001.tar", "_pool.json"]
    assert json.loads((tmp_path / "_pool.json").read_text()) == meta
    expected = {"name": "synthetic", "format": "webdataset", "n": 30, "seed": 5,
                "samples_per_shard": 20, "shards": ["00000", "00001"], "image_size": 16}
    assert {k: meta[k] for k in expected} == expected


def test_parquet_layout_embeds_images(tmp_path: Path) -> None:
    build_synthetic_pool(tmp_path, 30, samples_per_shard=20, fmt="parquet", image_size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.parquet", "00001.parquet", "_pool.json"]
    rows = _truth(tmp_path)
    assert len(rows) == 30
    for r in rows:
        assert Image.open(io.BytesIO(r["image"])).size == (16, 16)
        assert r["image"] == make_sample(0, int(r["key"]), image_size=16).jpeg


def test_folder_layout(tmp_path: Path) -> None:
    build_synthetic_pool(tmp_path, 30, samples_per_shard=20, fmt="folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000", "00000.parquet", "00001", "00001.parquet",
                                                          "_pool.json"]
    assert sorted(p.name for p in (tmp_path / "00001").iterdir()) == [
        f"{i:09d}.{ext}" for i in range(20, 30) for ext in ("jpg", "txt")]
    for r in _truth(tmp_path):
        shard = tmp_path / f"{int(r['key']) // 20:05d}"
        assert (shard / f"{r['key']}.txt").read_text(encoding="utf-8") == r["caption"]
        assert Image.open(shard / f"{r['key']}.jpg").size == (64, 64)


def test_interrupted_build_leaves_no_partial_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(table: pa.Table, where) -> None:
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    build_synthetic_pool(tmp_path, 10)
    monkeypatch.setattr(synthetic.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        build_synthetic_pool(tmp_path, 10, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.parquet", "00000.tar"]
    assert pq.read_table(tmp_path / "00000.parquet").num_rows == 10  # the previous, complete file


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"samples_per_shard": 0}, "samples_per_shard must be >= 1"),
        ({"seed": -1}, "seed must be a non-negative"),
        ({"image_size": 4}, "image_size must be >= 8"),
        ({"duplicate_fraction": 1.0}, r"duplicate_fraction must be in \[0, 1\)"),
        ({"duplicate_fraction": -0.1}, r"duplicate_fraction must be in \[0, 1\)"),
        ({"junk_fraction": 1.5}, r"junk_fraction must be in \[0, 1\)"),
        ({"fmt": "zip"}, "fmt must be one of webdataset, parquet, folder"),
        ({"workers": 0}, "workers must be >= 1"),
    ],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"n": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_synthetic_pool(tmp_path / "pool", **args)
    assert not (tmp_path / "pool").exists()
