"""Decoding for the models: transparent pixels are shown on white, whatever the image mode."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from curate.stages.score.model_batches import decoded_rgb


def black_disc(mode: str) -> bytes:
    """A black disc on a transparent background (the colour under it black too, as clip art
    exports usually have it), saved as PNG in `mode`."""
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((10, 10, 30, 30), fill=(0, 0, 0, 255))
    if mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        image.info["transparency"] = image.getpixel((0, 0))
    elif mode != "RGBA":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **({"transparency": image.info["transparency"]} if mode == "P" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_white_and_the_drawing_stays_black(mode):
    decoded = decoded_rgb(black_disc(mode))
    assert decoded.mode == "RGB"
    assert decoded.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.getpixel((20, 20)) == (0, 0, 0)


def test_an_opaque_jpeg_is_decoded_as_it_is():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 40)).save(buffer, "JPEG", quality=100)
    assert decoded_rgb(buffer.getvalue()).getpixel((4, 4)) == pytest.approx((200, 30, 40), abs=3)


def test_bytes_that_are_no_image_give_none():
    assert decoded_rgb(b"not an image") is None
