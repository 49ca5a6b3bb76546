"""The image bytes an export writes: by default the RGB pixels curate scored, so that webdataset's
`.decode("pil")`, open_clip's `_convert_to_rgb` and open_clip_train see what the filters saw.

Those readers drop an alpha channel and show the colour stored under it (black in most files),
where curate composites transparency on white (`decoded_rgb`). An image passes through untouched
when every reader makes the same pixels of it: 8-bit RGB or greyscale, without transparency, in
a format open_clip reads and the export asked for. Every other image is decoded as curate
decodes it and encoded again: as PNG (lossless) unless the export names a format."""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from curate.io.samples import OPEN_CLIP_IMAGE_EXTENSIONS
from curate.stages.score.model_batches import decoded_rgb

ImageFormat = Literal["original", "png", "jpg", "webp"]
_PLAIN_MODES = ("RGB", "L")  # modes whose pixels no reader converts differently
_PIL_FORMAT = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


def is_plain(data: bytes) -> bool:
    """Whether every reader decodes these bytes to the pixels curate scored (read from the
    header only: no pixel is decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.mode in _PLAIN_MODES and "transparency" not in image.info
    except Exception:  # PIL raises many types for bad bytes; such bytes are left as they are
        return True


def export_image(data: bytes, ext: str, image_format: ImageFormat = "original", quality: int = 95,
                 keep_alpha: bool = False) -> tuple[bytes, str, bool]:
    """(bytes, extension, converted) of one image as the export writes it.

    keep_alpha: the bytes as ingested (formats open_clip cannot read become PNG, alpha kept).
    Otherwise the RGB curate scored, in `image_format` ("original": the ingested format when the
    bytes pass through, else PNG); bytes already plain and in that format pass through untouched.
    """
    if keep_alpha:
        if ext in OPEN_CLIP_IMAGE_EXTENSIONS:
            return data, ext, False
        return _encode_as_is(data), "png", True
    target = ext if image_format == "original" else image_format
    if target == ext and ext in OPEN_CLIP_IMAGE_EXTENSIONS and is_plain(data):
        return data, ext, False
    image = decoded_rgb(data)
    if image is None:  # bytes that never decoded: written as they came, nothing is lost
        return data, ext, False
    if image_format == "original":
        target = "png"
    return _encode(image, target, quality), target, True


def _encode(image: Image.Image, ext: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": quality} if ext in ("jpg", "webp") else {}
    image.save(buffer, format=_PIL_FORMAT[ext], **options)
    return buffer.getvalue()


def _encode_as_is(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
