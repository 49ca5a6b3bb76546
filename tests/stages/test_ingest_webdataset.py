"""Bad input becomes drop reasons while the run goes on; unreadable files are clear errors."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate import InputError, load_pipeline, run_pipeline
from curate.io.samples import make_uid
from curate.io.tars import tar_bytes
from conftest import jpeg_bytes, png_bytes, sample, write_pipeline

SELECT_ALL = [{"stage": "export", "params": {"samples_per_shard": 10}}]


def _cut_jpeg() -> bytes:
    """A noisy JPEG with its last quarter cut off: the header is intact, the pixels are not."""
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    return data[: len(data) * 3 // 4]


def _run(tmp_path, inputs, **ingest):
    pipeline = write_pipeline(tmp_path / "p.yaml", inputs, tmp_path / "run", stages=SELECT_ALL, **ingest)
    return run_pipeline(load_pipeline(pipeline))


def _reasons(tmp_path) -> dict[str, str]:
    dropped = pq.read_table(tmp_path / "run" / "dropped.parquet").to_pylist()
    return {row["key"]: row["drop_reason"] for row in dropped}


def test_bad_items_become_drop_reasons(tmp_path):
    corrupt = jpeg_bytes(3)[:40] + b"\x00garbage" * 20
    truncated_jpeg = _cut_jpeg()
    samples = [
        sample(0, "a fine caption"),
        sample(1, "   "),
        sample(2, b"caf\xe9 au lait"),
        sample(3, "a corrupt image", image=corrupt),
        sample(4, "a cut jpeg", image=truncated_jpeg),
        {"__key__": "000005", "txt": b"no image at all"},
        sample(6, ...),
        {"__key__": "000007", "png": png_bytes(7), "txt": b"a png is fine"},
    ]
    (tmp_path / "bad.tar").write_bytes(tar_bytes(samples))
    summary = _run(tmp_path, str(tmp_path / "bad.tar"))
    assert _reasons(tmp_path) == {
        "000001": "empty_caption", "000002": "caption_not_utf8", "000003": "corrupt_image",
        "000004": "corrupt_image", "000005": "missing_image", "000006": "missing_caption",
    }
    assert (summary["ingested"], summary["curated"], summary["dropped"]) == (8, 2, 6)


def test_header_check_passes_truncated_jpeg_bytes_through_but_not_formats_export_reencodes(tmp_path):
    buffer = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "GIF")
    cut_gif = {"__key__": "000001", "gif": buffer.getvalue()[:-200], "txt": b"a cut gif"}
    cut_jpeg = sample(0, "cut but readable header", image=_cut_jpeg())
    (tmp_path / "a.tar").write_bytes(tar_bytes([cut_jpeg, cut_gif]))
    summary = _run(tmp_path, str(tmp_path / "a.tar"), check_images="header")
    assert summary["curated"] == 1
    assert _reasons(tmp_path) == {"000001": "corrupt_image"}


def _tar_and_member(count: int, name: str) -> tuple[bytes, tarfile.TarInfo]:
    data = tar_bytes([sample(i, f"caption number {i}") for i in range(count)])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return data, archive.getmember(name)


def test_tar_cut_inside_a_member_drops_that_sample_and_keeps_the_ones_before(tmp_path):
    data, member = _tar_and_member(6, "000003.jpg")
    (tmp_path / "cut.tar").write_bytes(data[: member.offset_data + member.size // 2])
    (tmp_path / "good.tar").write_bytes(tar_bytes([sample(i, f"other {i}") for i in range(10, 13)]))
    summary = _run(tmp_path, str(tmp_path / "{cut,good}.tar"))
    assert _reasons(tmp_path) == {"000003": "truncated_tar"}
    keys = pq.read_table(tmp_path / "run" / "ingest_webdataset" / "cut.parquet").column("key")
    assert keys.to_pylist() == ["000000", "000001", "000002", "000003"]
    assert (summary["ingested"], summary["curated"]) == (7, 6)
    warnings = summary["stages"][0]["warnings"]
    assert len(warnings) == 1 and "cut.tar" in warnings[0] and "000003.jpg" in warnings[0]


@pytest.mark.parametrize("member, past_header_start", [
    ("000002.jpg", 0), ("000002.jpg", 100), ("000002.jpg", 500),
    ("000001.json", 0), ("000001.txt", 0)])
def test_tar_cut_at_a_member_boundary_drops_the_last_sample(tmp_path, member, past_header_start):
    data, member = _tar_and_member(4, member)
    (tmp_path / "cut.tar").write_bytes(data[: member.offset + past_header_start])
    summary = _run(tmp_path, str(tmp_path / "cut.tar"))
    # the sample before the cut may have lost members after it: it is dropped, not guessed at
    assert (summary["ingested"], summary["curated"]) == (2, 1)
    assert _reasons(tmp_path) == {"000001": "truncated_tar"}
    warnings = summary["stages"][0]["warnings"]
    assert len(warnings) == 1 and "cut.tar" in warnings[0] and "lost" in warnings[0]


@pytest.mark.parametrize("content, message", [(None, "does not exist"),
                                              (b"this is not a tar" * 100, "not a readable tar")])
def test_unreadable_input_is_an_error_naming_the_file(tmp_path, content, message):
    target = tmp_path / "broken.tar"
    if content is not None:
        target.write_bytes(content)
    with pytest.raises(InputError, match=rf"broken\.tar.*{message}|{message}.*broken\.tar"):
        _run(tmp_path, str(target))


def test_uid_is_a_hash_of_source_name_and_key(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.tar").write_bytes(tar_bytes([sample(0, "a red circle on blue")]))
    _run(tmp_path, str(tmp_path / "p" / "a.tar"), dataset="demo")
    ingest = pq.read_table(tmp_path / "run" / "ingest_webdataset" / "a.parquet").to_pylist()[0]
    assert ingest["source"] == "demo/a.tar"
    assert ingest["uid"] == make_uid("demo/a.tar", "000000") and len(ingest["uid"]) == 32
    assert ingest["url"] == "http://example.invalid/0.jpg"
    assert (ingest["width"], ingest["height"], ingest["image_format"]) == (32, 32, "jpg")


def test_uids_carried_by_the_pool_are_used_and_bad_ones_dropped(tmp_path):
    carried = "0123456789ABCDEF0123456789abcdef"
    samples = [sample(i, "a red circle on blue") for i in range(4)]
    for record, meta in zip(samples, [{"uid": carried}, {"uid": "not-hex"}, {}, {"uid": 12}]):
        record["json"] = json.dumps(meta).encode()
    (tmp_path / "p.tar").write_bytes(tar_bytes(samples))
    _run(tmp_path, str(tmp_path / "p.tar"), uid_field="uid")
    rows = pq.read_table(tmp_path / "run" / "ingest_webdataset" / "p.parquet").to_pylist()
    assert rows[0]["uid"] == carried.lower() and rows[0]["drop_reason"] is None
    assert [row["drop_reason"] for row in rows[1:]] == ["bad_uid", "missing_uid", "bad_uid"]
    assert rows[2]["uid"] == make_uid("p.tar", "000002")  # a dropped row keeps a uid of its own
