"""The common pool writer, on crafted samples (no packages needed)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest
import webdataset as wds
from PIL import Image

from curate.pools.writer import PoolSample, safe_key, write_pool
from pool_helpers import manifest, rows, tree

COLUMNS = {"path": pa.string(), "label": pa.int32(), "tags": pa.list_(pa.string())}


def _png(seed: int, size: tuple[int, int] = (12, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 20, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _samples(n: int) -> list[PoolSample]:
    return [PoolSample(f"item_{i:03d}", _png(i), "png", f"caption {i}", {"path": f"dir/item.{i}.png", "label": i,
                                                                          "tags": ["a", str(i)]}) for i in range(n)]


def test_layout_manifest_and_rows(tmp_path: Path) -> None:
    meta = write_pool(_samples(7), tmp_path, name="toy", columns=COLUMNS, samples_per_shard=3,
                      manifest={"task": "demo", "counts": {"skipped": 2}})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00000.parquet", "00000.tar", "00001.parquet", "00001.tar", "00002.parquet", "00002.tar", "_pool.json"]
    assert meta == manifest(tmp_path)
    assert (meta["name"], meta["kind"], meta["n"], meta["shards"], meta["samples_per_shard"], meta["task"]) == (
        "toy", "pool", 7, ["00000", "00001", "00002"], 3, "demo")
    assert meta["counts"] == {"written": 7, "skipped": 2, "refused_eval_items": 0}
    assert meta["refused_eval_items"] == 0 and meta["refused_by"] == {}
    assert meta["outputs"] == sorted(p.name for p in tmp_path.iterdir() if p.name != "_pool.json")
    table = rows(tmp_path)
    assert [r["key"] for r in table] == [f"item_{i:03d}" for i in range(7)]
    first = table[0]
    assert (first["width"], first["height"], first["label"], first["tags"]) == (12, 8, 0, ["a", "0"])
    assert first["sha256"] == hashlib.sha256(_png(0)).hexdigest()
    assert "image" not in first


def test_tar_members_and_webdataset(tmp_path: Path) -> None:
    write_pool(_samples(4), tmp_path, name="toy", columns=COLUMNS, samples_per_shard=10)
    with tarfile.open(tmp_path / "00000.tar") as tar:
        names = tar.getnames()
    assert names == [f"item_{i:03d}.{ext}" for i in range(4) for ext in ("png", "txt", "json")]
    samples = list(wds.WebDataset(str(tmp_path / "00000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"item_{i:03d}" for i in range(4)]
    truth = json.loads(samples[2]["json"])
    assert truth == {"key": "item_002", "caption": "caption 2", "path": "dir/item.2.png", "label": 2,
                     "tags": ["a", "2"]}
    assert samples[2]["txt"] == b"caption 2" and samples[2]["png"] == _png(2)


def test_same_samples_give_identical_bytes_and_stale_shards_go(tmp_path: Path) -> None:
    write_pool(_samples(7), tmp_path / "a", name="toy", columns=COLUMNS, samples_per_shard=3)
    write_pool(_samples(7), tmp_path / "b", name="toy", columns=COLUMNS, samples_per_shard=3)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    write_pool(_samples(2), tmp_path / "a", name="toy", columns=COLUMNS, samples_per_shard=3)
    assert sorted(tree(tmp_path / "a")) == ["00000.parquet", "00000.tar", "_pool.json"]


def test_excluded_images_are_refused_and_counted(tmp_path: Path) -> None:
    samples = _samples(5)
    meta = write_pool(samples, tmp_path, name="toy", columns=COLUMNS,
                      exclude={hashlib.sha256(samples[3].image).hexdigest()})
    assert (meta["n"], meta["refused_eval_items"], meta["refused_keys"]) == (4, 1, ["item_003"])
    assert meta["refused_by"] == {"eval_image": 1}
    assert "item_003" not in [r["key"] for r in rows(tmp_path)]


@pytest.mark.parametrize("bad, message", [
    (PoolSample("a.b", b"", "png", "", {}), "safe WebDataset key"),
    (PoolSample("ok", _png(1), "gif", "", {}), "extension"),
    (PoolSample("ok", _png(1), "png", "", {"nope": 1}), "does not declare"),
    (PoolSample("item_000", _png(1), "png", "", {}), "twice"),
])
def test_bad_samples_are_refused_with_the_reason(tmp_path: Path, bad: PoolSample, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_pool([*_samples(1), bad], tmp_path, name="toy", columns=COLUMNS)
    assert not (tmp_path / "_pool.json").exists()


def test_safe_keys_have_no_dots_or_slashes_and_stay_distinct() -> None:
    assert safe_key("animals/cat.png") == "animals_cat"
    assert safe_key("a/b-c_d.svg") == "a_b-c_d"
    paths = ("icons/apacheconf.png", "icons/apacheconf..png", "icons/view+.png", "icons/view.png")
    odd = [safe_key(p) for p in paths]
    assert len(set(odd)) == 4 and odd[0] == "icons_apacheconf"
    long = safe_key("x/" + "y" * 200 + ".png")
    assert len(long) <= 80
    for key in [*odd, long]:
        assert "." not in key and "/" not in key


def test_eval_sets_record_no_refusals_and_refuse_nothing(tmp_path: Path) -> None:
    meta = write_pool(_samples(2), tmp_path, name="toy", kind="eval", columns=COLUMNS)
    assert meta["kind"] == "eval" and "refused_eval_items" not in meta
    with pytest.raises(ValueError, match="refuses nothing"):
        write_pool(_samples(2), tmp_path, name="toy", kind="eval", columns=COLUMNS, exclude={"0" * 64})
