"""ingest_folder: folders of images with a .txt caption beside each, through whole pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import InputError, PipelineConfig, run_pipeline
from conftest import exported_members, ingest_export_config, jpeg_bytes, png_bytes


def _config(run_dir: Path, ingest: dict, middle: list[dict] | None = None,
            samples_per_shard: int = 100) -> PipelineConfig:
    return ingest_export_config(run_dir, "ingest_folder", ingest, middle, samples_per_shard)


def _shard_rows(run_dir: Path) -> dict[str, list[dict]]:
    """shard name -> its sample rows, for every ingest shard."""
    return {path.stem: pq.read_table(path).to_pylist()
            for path in sorted((run_dir / "ingest_folder").glob("*.parquet"))}


# relative path (without extension) -> (image file suffix, image bytes, caption file bytes or None)
TREE = {
    "animals/cats/tabby": (".jpg", jpeg_bytes(1), b"a tabby cat asleep on a red sofa\n"),
    "animals/cats/small/kitten": (".png", png_bytes(2), b"a small grey kitten in a cardboard box"),
    "animals/dogs/collie": (".JPG", jpeg_bytes(3), b"  a collie running across a green field  "),
    "animals/dogs/uncaptioned": (".jpg", jpeg_bytes(4), None),
    "broken": (".jpg", b"\xff\xd8\xff this is not really a jpeg", b"a picture that cannot be decoded"),
    "landscape": (".jpeg", jpeg_bytes(6), b"mountains above a lake at dawn"),
    "notutf8": (".png", png_bytes(7), b"caf\xe9 \xff sign"),
}


def _write_tree(root: Path) -> Path:
    for relative, (suffix, image, caption) in TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + suffix).write_bytes(image)
        if caption is not None:
            path.with_name(path.name + ".txt").write_bytes(caption)
    (root / "README.md").write_text("not an image, ignored")
    (root / "animals" / "orphan.txt").write_text("a caption without an image is ignored")
    return root


def test_nested_folders_keys_captions_and_drop_reasons(tmp_path):
    photos = _write_tree(tmp_path / "photos")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(photos)}))

    rows = [row for shard in _shard_rows(run_dir).values() for row in shard]
    by_key = {row["key"]: row for row in rows}
    # key: the path relative to the folder, without extension; sorted path order
    assert [row["key"] for row in rows] == sorted(TREE)
    assert {row["source"] for row in rows} == {"photos"}
    assert {key: row["drop_reason"] for key, row in by_key.items()} == {
        "animals/cats/tabby": None,
        "animals/cats/small/kitten": None,
        "animals/dogs/collie": None,
        "animals/dogs/uncaptioned": "missing_caption",
        "broken": "corrupt_image",
        "landscape": None,
        "notutf8": "caption_not_utf8",
    }
    assert by_key["animals/cats/tabby"]["caption"] == "a tabby cat asleep on a red sofa"
    assert by_key["animals/dogs/collie"]["caption"] == "a collie running across a green field"
    assert by_key["animals/dogs/collie"]["image_format"] == "jpg"
    assert by_key["animals/cats/small/kitten"]["image_format"] == "png"
    assert by_key["animals/dogs/uncaptioned"]["image_format"] == "jpg"
    assert by_key["broken"]["caption"] == "a picture that cannot be decoded"
    assert len({row["uid"] for row in rows}) == len(TREE)

    assert (summary["ingested"], summary["curated"], summary["dropped"]) == (7, 4, 3)
    assert summary["dropped_by_reason"] == {"caption_not_utf8": 1, "corrupt_image": 1, "missing_caption": 1}
    dropped = {row["key"]: row for row in pq.read_table(run_dir / "dropped.parquet").to_pylist()}
    assert {k: d["drop_reason"] for k, d in dropped.items()} == {
        "animals/dogs/uncaptioned": "missing_caption", "broken": "corrupt_image",
        "notutf8": "caption_not_utf8"}
    assert {d["dropped_by"] for d in dropped.values()} == {"ingest_folder"}
    assert {d["source"] for d in dropped.values()} == {"photos"}

    exported = exported_members(run_dir)
    kept = ["animals/cats/tabby", "animals/cats/small/kitten", "animals/dogs/collie", "landscape"]
    assert set(exported) == {by_key[k]["uid"] for k in kept}
    kitten = exported[by_key["animals/cats/small/kitten"]["uid"]]
    assert kitten["png"] == TREE["animals/cats/small/kitten"][1]
    assert kitten["txt"] == b"a small grey kitten in a cardboard box"
    assert json.loads(kitten["json"])["key"] == "animals/cats/small/kitten"
    # .jpeg and .JPG images are exported as jpg, bytes untouched
    assert exported[by_key["landscape"]["uid"]]["jpg"] == TREE["landscape"][1]
    assert exported[by_key["animals/dogs/collie"]["uid"]]["jpg"] == TREE["animals/dogs/collie"][1]


def test_files_per_shard_splits_into_numbered_shards(tmp_path):
    photos = _write_tree(tmp_path / "photos")
    run_dir = tmp_path / "run"
    summary = run_pipeline(_config(run_dir, {"inputs": str(photos), "files_per_shard": 3},
                                   middle=[{"stage": "caption_stats"}], samples_per_shard=2))
    shards = _shard_rows(run_dir)
    assert list(shards) == ["00000", "00001", "00002"]
    assert [len(rows) for rows in shards.values()] == [3, 3, 1]
    assert [row["key"] for rows in shards.values() for row in rows] == sorted(TREE)
    assert sorted(p.name for p in (run_dir / "ingest_folder" / "_done").glob("*.json")) == [
        "00000.json", "00001.json", "00002.json"]
    assert sorted(p.stem for p in (run_dir / "caption_stats").glob("*.parquet")) == ["00000", "00001", "00002"]
    assert summary["stages"][0]["shards"] == 3
    assert summary["ingested"] == 7 and summary["curated"] == 4
    # 4 kept samples, 2 per export shard
    assert summary["outputs"]["shard_count"] == 2
    assert json.loads((run_dir / "export" / "shards" / "sizes.json").read_text()) == {
        "00000.tar": 2, "00001.tar": 2}

    # the uid depends on the source and key only, not on how the files were sharded
    one_shard = tmp_path / "run-one"
    run_pipeline(_config(one_shard, {"inputs": str(photos), "files_per_shard": 100}))
    assert list(_shard_rows(one_shard)) == ["00000"]
    uids = {row["key"]: row["uid"] for rows in shards.values() for row in rows}
    assert {row["key"]: row["uid"] for row in _shard_rows(one_shard)["00000"]} == uids


def test_rerun_reuses_every_shard_and_a_new_caption_redoes_its_shard(tmp_path):
    photos = _write_tree(tmp_path / "photos")
    run_dir = tmp_path / "run"
    config = _config(run_dir, {"inputs": str(photos), "files_per_shard": 3})
    first = run_pipeline(config)
    again = run_pipeline(config)
    assert again["stages"][0]["reused"] == again["stages"][0]["shards"] == 3
    assert again["curated"] == first["curated"] == 4

    # giving the uncaptioned dog a caption changes only its shard's fingerprint
    (photos / "animals" / "dogs" / "uncaptioned.txt").write_text("a dog that now has a caption")
    third = run_pipeline(config)
    assert third["stages"][0]["reused"] == 2
    assert third["curated"] == 5 and third["dropped_by_reason"] == {"caption_not_utf8": 1, "corrupt_image": 1}


def test_dataset_prefix_sets_the_source_and_changes_uids(tmp_path):
    photos = _write_tree(tmp_path / "photos")
    plain = tmp_path / "plain"
    named = tmp_path / "named"
    run_pipeline(_config(plain, {"inputs": str(photos)}))
    run_pipeline(_config(named, {"inputs": str(photos), "dataset": "zoo"}))
    plain_rows = _shard_rows(plain)["00000"]
    named_rows = _shard_rows(named)["00000"]
    assert all(row["source"].startswith("zoo") for row in named_rows)
    assert [row["key"] for row in named_rows] == [row["key"] for row in plain_rows]
    assert not {row["uid"] for row in named_rows} & {row["uid"] for row in plain_rows}


def test_nonexistent_folder_is_an_input_error(tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(InputError) as error:
        run_pipeline(_config(tmp_path / "run", {"inputs": str(missing)}))
    assert str(missing) in str(error.value)


def test_a_file_instead_of_a_folder_is_an_input_error(tmp_path):
    image = tmp_path / "one.jpg"
    image.write_bytes(jpeg_bytes(1))
    with pytest.raises(InputError, match="one.jpg"):
        run_pipeline(_config(tmp_path / "run", {"inputs": str(image)}))


def test_folder_without_images_is_an_input_error(tmp_path):
    folder = tmp_path / "captions-only"
    folder.mkdir()
    (folder / "a.txt").write_text("a caption with no image beside it")
    with pytest.raises(InputError, match="no images"):
        run_pipeline(_config(tmp_path / "run", {"inputs": str(folder)}))


def test_two_input_folders_with_the_same_basename_get_distinct_uids(tmp_path):
    for pool, seed in (("pool1", 1), ("pool2", 2)):
        folder = tmp_path / pool / "images"
        folder.mkdir(parents=True)
        (folder / "0001.jpg").write_bytes(jpeg_bytes(seed))
        (folder / "0001.txt").write_text(f"a photo that belongs to {pool}")
    run_dir = tmp_path / "run"
    separate = [str(tmp_path / "pool1" / "images"), str(tmp_path / "pool2" / "images")]
    with pytest.raises(InputError, match="would both be named 'images'.*one pattern"):
        run_pipeline(_config(run_dir, {"inputs": separate}))
    summary = run_pipeline(_config(run_dir, {"inputs": str(tmp_path / "pool*" / "images")}))
    assert summary["ingested"] == summary["curated"] == 2
