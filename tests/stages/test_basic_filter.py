"""DataComp's basic filter: every rule on both sides of its threshold, and the thresholds as
parameters."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate import load_pipeline, run_pipeline
from curate.io.tars import tar_bytes
from conftest import write_pipeline


def _jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


CASES = {  # key: (caption, width, height, expected drop reason)
    "keep": ("a large dog runs on the beach", 300, 250, None),
    "words2": ("large dog", 300, 300, "caption_too_few_words"),
    "words3": ("a big dog", 300, 300, None),
    "chars5": ("a b c", 300, 300, "caption_too_short"),
    "chars6": ("a b cd", 300, 300, None),
    "german": ("ein großer Hund läuft am Strand entlang", 300, 300, "not_english"),
    "side199": ("a large dog runs on the beach", 199, 400, "image_too_small"),
    "side200": ("a large dog runs on the beach", 200, 600, None),
    "ratio301": ("a large dog runs on the beach", 903, 300, "aspect_ratio_too_large"),
    "ratio3": ("a large dog runs on the beach", 900, 300, None),
}


def _run(tmp_path, params=None):
    samples = [{"__key__": key, "jpg": _jpeg(w, h), "txt": caption.encode()}
               for key, (caption, w, h, _) in CASES.items()]
    (tmp_path / "pool.tar").write_bytes(tar_bytes(samples))
    stages = [{"stage": "basic_filter", "params": params or {}}]
    run_pipeline(load_pipeline(write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool.tar"),
                                              tmp_path / "run", stages=stages)))
    return {row["uid"]: row for row in pq.read_table(tmp_path / "run" / "basic_filter" / "pool.parquet").to_pylist()}, \
        {row["uid"]: row["key"] for row in pq.read_table(tmp_path / "run" / "ingest_webdataset" / "pool.parquet").to_pylist()}


def test_each_rule_on_both_sides_of_its_threshold(tmp_path):
    rows, keys = _run(tmp_path)
    reasons = {keys[uid]: row["drop_reason"] for uid, row in rows.items()}
    assert reasons == {key: expected for key, (_, _, _, expected) in CASES.items()}
    measured = {keys[uid]: row for uid, row in rows.items()}
    assert measured["keep"]["language"] == "en" and measured["german"]["language"] == "de"
    assert measured["words2"]["caption_words_ws"] == 2 and measured["chars5"]["caption_length"] == 5
    assert measured["ratio3"]["image_aspect_ratio"] == pytest.approx(3.0)
    assert measured["side199"]["image_min_side"] == 199


def test_thresholds_are_parameters(tmp_path):
    rows, keys = _run(tmp_path, {"min_words": 2, "min_side": 100, "languages": ["en", "de"],
                                 "max_aspect_ratio": 3.5})
    reasons = {keys[uid]: row["drop_reason"] for uid, row in rows.items()}
    assert reasons["words2"] is None and reasons["german"] is None
    assert reasons["side199"] is None and reasons["ratio301"] is None
    assert reasons["chars5"] == "caption_too_short"


def test_words_are_counted_as_python_str_split_counts_them():
    """DataComp counts len(caption.split()); Python's whitespace includes \\x1c-\\x1f, which the
    regex \\s does not: every code point is tried as the separator of two words."""
    import polars as pl

    from curate.stages.select.basic_filter import PYTHON_WORD

    texts = [f"a{chr(c)}b {chr(c)}c" for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    counts = pl.Series(texts).str.count_matches(PYTHON_WORD).to_list()
    assert counts == [len(text.split()) for text in texts]
    assert pl.Series(["one\x1ctwo\x1fthree"]).str.count_matches(PYTHON_WORD).item() == 3
