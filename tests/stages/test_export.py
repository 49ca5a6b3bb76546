"""Curated shards: fixed size, metadata, sizes.json and subset.npy that open_clip and
DataComp's tooling read as they are."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from curate import load_pipeline, run_pipeline
from curate.io.subset import u8u8_to_uids
from curate.io.tars import tar_bytes
from conftest import sample, write_pipeline, write_pool


def _export(tmp_path, inputs, samples_per_shard):
    stages = [{"stage": "caption_stats"},
              {"stage": "select", "params": {"filters": {"few_words": "caption_words >= 3"}}},
              {"stage": "export", "params": {"samples_per_shard": samples_per_shard}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", inputs, tmp_path / "run", stages=stages)
    return run_pipeline(load_pipeline(pipeline)), tmp_path / "run" / "export"


def test_shards_have_a_fixed_size_and_open_clip_reads_them(tmp_path):
    write_pool(tmp_path / "pool", shards=4, per_shard=37)
    summary, out = _export(tmp_path, str(tmp_path / "pool" / "*.tar"), samples_per_shard=16)
    kept = summary["curated"]
    sizes = json.loads((out / "shards" / "sizes.json").read_text())
    counts = list(sizes.values())
    assert sum(counts) == kept == 74 and counts == [16] * 4 + [10]
    assert sorted(sizes) == [f"{i:05d}.tar" for i in range(5)]

    # the way open_clip's get_wds_dataset reads a shard list
    urls = str(out / "shards" / "{00000..00004}.tar")
    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(),
                                wds.decode("pilrgb"), wds.rename(image="jpg;png;jpeg;webp", text="txt"),
                                wds.to_tuple("image", "text", "json", "__key__"))
    rows = list(pipeline)
    assert len(rows) == kept
    for image, text, meta, key in rows:
        assert image.size == (32, 32) and len(text.split()) >= 3
        assert meta["uid"] == key and meta["caption"] == text and meta["url"].startswith("http")


def test_subset_file_is_sorted_u8u8_of_curated_uids(tmp_path):
    write_pool(tmp_path / "pool", shards=2, per_shard=30)
    summary, out = _export(tmp_path, str(tmp_path / "pool" / "*.tar"), samples_per_shard=7)
    subset = np.load(out / "subset.npy")
    assert subset.dtype == np.dtype("u8,u8") and len(subset) == summary["curated"]
    uids = u8u8_to_uids(subset)
    assert uids == sorted(uids)
    metadata = pq.read_table(sorted((out / "shards").glob("*.parquet")))
    assert set(uids) == set(metadata.column("uid").to_pylist())
    assert int(metadata.column("uid")[0].as_py()[:16], 16) in subset["f0"]


def test_formats_open_clip_cannot_read_are_reencoded_as_png(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 10, 10)).save(buffer, "GIF")
    gif = {"__key__": "000001", "gif": buffer.getvalue(), "txt": b"a red gif banner image"}
    (tmp_path / "a.tar").write_bytes(tar_bytes([sample(0, "a plain jpeg sample here"), gif]))
    summary, out = _export(tmp_path, str(tmp_path / "a.tar"), samples_per_shard=10)
    assert summary["curated"] == 2
    metadata = pq.read_table(out / "shards" / "00000.parquet").to_pylist()
    formats = {row["key"]: row["image_format"] for row in metadata}
    assert formats == {"000000": "jpg", "000001": "png"}
    members = {row["__key__"]: row for row in wds.WebDataset(str(out / "shards" / "00000.tar"),
                                                              shardshuffle=False).decode("pil")}
    gif_row = next(row for row in members.values() if "png" in row)
    assert "gif" not in gif_row and gif_row["png"].size == (20, 10)


def test_rerun_with_smaller_export_removes_stale_shards(tmp_path):
    write_pool(tmp_path / "pool", shards=1, per_shard=60)
    _export(tmp_path, str(tmp_path / "pool" / "*.tar"), samples_per_shard=5)
    stages = [{"stage": "caption_stats"},
              {"stage": "select", "params": {"filters": {"few_words": "caption_words >= 3"}}},
              {"stage": "export", "params": {"samples_per_shard": 50}}]
    pipeline = write_pipeline(tmp_path / "q.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run", stages=stages)
    run_pipeline(load_pipeline(pipeline), force=True)
    assert sorted(p.name for p in (tmp_path / "run" / "export" / "shards").iterdir()) == [
        "00000.parquet", "00000.tar", "sizes.json"]


def test_export_reads_the_right_rows_across_row_groups(tmp_path, monkeypatch):
    import curate.run

    monkeypatch.setattr(curate.run, "PARQUET_ROW_GROUP", 7)  # many small row groups per shard
    write_pool(tmp_path / "pool", shards=2, per_shard=60)
    summary, out = _export(tmp_path, str(tmp_path / "pool" / "*.tar"), samples_per_shard=9)
    metadata = pq.read_table(sorted((out / "shards").glob("*.parquet"))).to_pylist()
    assert len(metadata) == summary["curated"] == 60
    ingested = {row["uid"]: row for row in pq.read_table(
        sorted((tmp_path / "run" / "ingest_webdataset").glob("*.parquet"))).to_pylist()}
    assert pq.ParquetFile(tmp_path / "run" / "ingest_webdataset" / "pool-00000.parquet").num_row_groups == 9
    for row in metadata:
        assert row["caption"] == ingested[row["uid"]]["caption"] and row["key"] == ingested[row["uid"]]["key"]
    keys = [row["key"] for row in metadata]
    assert keys == sorted(keys)  # kept samples in their original order


def _kinds_tar(path, kinds):
    """One sample per image kind, captioned with its kind."""
    samples = [{"__key__": f"{index:06d}", ext.lower(): data, "txt": f"an image of kind {kind}".encode()}
               for index, (kind, (ext, data, _)) in enumerate(kinds.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_bytes(samples))


def _clip_art() -> bytes:
    """Black strokes on a transparent background, the colour under it black: as clip art is."""
    pixels = np.zeros((40, 40, 4), np.uint8)
    pixels[10:30, 18:22, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def _export_kinds(tmp_path, **params):
    from hostile.corpus import image_kinds

    usable = {kind: spec for kind, spec in image_kinds().items() if spec[2] is None}
    usable["clip_art"] = ("png", _clip_art(), None)
    _kinds_tar(tmp_path / "kinds.tar", usable)
    stages = [{"stage": "export", "params": {"samples_per_shard": 100, **params}}]
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "kinds.tar"), tmp_path / "run", stages=stages)
    summary = run_pipeline(load_pipeline(pipeline))
    ingested = {row["uid"]: row for row in pq.read_table(tmp_path / "run" / "ingest_webdataset" / "kinds.parquet",
                                                         columns=["uid", "caption", "image"]).to_pylist()}
    metadata = {row["uid"]: row for row in pq.read_table(tmp_path / "run" / "export" / "shards" / "00000.parquet")
                .to_pylist()}
    return summary, usable, ingested, metadata, tmp_path / "run" / "export" / "shards" / "00000.tar"


def test_readers_that_drop_alpha_see_the_pixels_curate_scored(tmp_path):
    import torch

    from curate.models.clip import load_clip
    from curate.stages.score.model_batches import clip_pixels

    summary, kinds, ingested, metadata, tar = _export_kinds(tmp_path)
    clip = load_clip("curate-tiny-vit", None, "cpu")
    read = list(wds.WebDataset(str(tar), shardshuffle=False).decode("pil"))
    assert len(read) == len(kinds) == summary["curated"]
    for row in read:
        image = next(row[ext] for ext in ("jpg", "png", "webp") if ext in row)
        theirs = clip.preprocess(image)  # open_clip's own transform, its _convert_to_rgb included
        ours = clip.model_input(clip_pixels(clip, ingested[row["__key__"]]["image"])[None])[0]
        assert torch.equal(theirs, ours), row["txt"]
        if row["txt"].endswith(" clip_art"):  # the ingested bytes as those readers see them differ
            original = Image.open(io.BytesIO(ingested[row["__key__"]]["image"]))
            assert not torch.equal(clip.preprocess(original), ours)
    by_kind = {row["caption"].rsplit(" ", 1)[-1]: row for row in metadata.values()}
    untouched = {"jpeg", "png", "grey_jpeg", "webp", "upper_case_extension", "one_pixel"}
    assert {kind for kind, row in by_kind.items() if not row["image_converted"]} == untouched
    assert all(by_kind[kind]["image_format"] == "png" for kind in set(by_kind) - untouched)
    members = {row["__key__"]: row for row in wds.WebDataset(str(tar), shardshuffle=False)}
    for uid, row in metadata.items():  # untouched bytes are the ingested bytes; sha256 names those
        written = members[uid][row["image_format"]]
        assert (written == ingested[uid]["image"]) != row["image_converted"]
        assert row["sha256"] == hashlib.sha256(ingested[uid]["image"]).hexdigest()
    assert summary["outputs"]["images_converted"] == len(kinds) - len(untouched)


def test_export_writes_the_format_asked_for_or_keeps_alpha(tmp_path):
    summary, kinds, ingested, metadata, tar = _export_kinds(tmp_path / "jpg", image_format="jpg", quality=80)
    members = {row["__key__"]: row for row in wds.WebDataset(str(tar), shardshuffle=False)}
    assert {row["image_format"] for row in metadata.values()} == {"jpg"}
    assert all("jpg" in row and Image.open(io.BytesIO(row["jpg"])).mode in ("RGB", "L") for row in members.values())
    plain_jpeg = next(row for row in metadata.values() if row["caption"].endswith(" jpeg"))
    assert not plain_jpeg["image_converted"]  # already a plain JPEG: passed through

    summary, kinds, ingested, metadata, tar = _export_kinds(tmp_path / "alpha", keep_alpha=True)
    members = {row["__key__"]: row for row in wds.WebDataset(str(tar), shardshuffle=False)}
    alpha = next(uid for uid, row in metadata.items() if row["caption"].endswith(" alpha_png"))
    assert members[alpha]["png"] == ingested[alpha]["image"] and not metadata[alpha]["image_converted"]
    assert summary["outputs"]["images"] == "as ingested (keep_alpha)"


def test_keep_alpha_with_another_format_is_refused():
    from curate.stage import stage_class

    with pytest.raises(ValueError, match="keep_alpha"):
        stage_class("export").Params(image_format="jpg", keep_alpha=True)
