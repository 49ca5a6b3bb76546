"""Turning a raw source item into a sample.v1 row: uid, caption check, image check."""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

# PIL format name -> the extension WebDataset and open_clip expect
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
                 "TIFF": "tiff", "MPO": "jpg"}
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
OPEN_CLIP_IMAGE_EXTENSIONS = ("jpg", "png", "webp")  # others are re-encoded as PNG at export
CAPTION_EXTENSIONS = ("txt",)
_DECODE_TARGET = (64, 64)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Checks:
    """How closely each item is looked at, and the limits that keep a hostile one from costing
    the run its memory: images are measured from their header before any pixel is decoded."""

    decode: Literal["decode", "header"] = "decode"
    max_pixels: int = 100_000_000
    max_image_bytes: int = 64 << 20
    max_caption_bytes: int = 64 << 10


def make_uid(source: str, key: str) -> str:
    """32 hex characters from the item's source identity (source name and key)."""
    return hashlib.sha256(f"{source}\x1f{key}".encode()).hexdigest()[:32]


def clean_caption(raw: bytes | str | None, max_bytes: int = Checks.max_caption_bytes) -> tuple[str | None, str | None]:
    """(caption, problem): strip whitespace; missing, non-UTF-8, empty or overlong captions are
    problems (an overlong one is not kept: it is no caption, and would bloat every sidecar)."""
    if raw is None:
        return None, "missing_caption"
    if len(raw if isinstance(raw, bytes) else raw.encode()) > max_bytes:
        return None, "caption_too_long"
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "caption_not_utf8"
    text = raw.strip()
    return (text, None) if text else (None, "empty_caption")


def inspect_image(data: bytes | None, checks: Checks = Checks()) -> tuple[dict, str | None]:
    """(format/width/height, problem) for encoded image bytes.

    checks.decode="header" reads only the header (fast, bytes pass through untouched); "decode"
    also decodes the pixels (at reduced scale for JPEG), which catches truncated files. Formats
    that export re-encodes are always decoded, so a broken one is dropped here, not at export.
    Images over the byte or pixel limits are never decoded.
    """
    if data is None:
        return {}, "missing_image"
    if not data:
        return {}, "empty_image"
    if len(data) > checks.max_image_bytes:
        return {}, "image_too_many_bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            info = {"image_format": IMAGE_FORMATS.get(image.format or ""),
                    "width": image.width, "height": image.height}
            if info["image_format"] is None:
                return info, "unsupported_image_format"
            if image.width * image.height > checks.max_pixels:
                return info, "image_too_large"
            if checks.decode == "decode" or info["image_format"] not in OPEN_CLIP_IMAGE_EXTENSIONS:
                image.draft("RGB", _DECODE_TARGET)
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return {}, "image_too_large"
    except Exception:  # PIL raises many types for bad bytes; all mean the same here
        return {}, "not_an_image" if _looks_like_text(data) else "corrupt_image"
    return info, None


def _looks_like_text(data: bytes) -> bool:
    """An HTML page or other text served where an image was expected."""
    head = data[:64].lstrip()
    return head[:1] == b"<" or all(32 <= byte < 127 or byte in b"\r\n\t" for byte in head)


def given_uid(value: Any) -> tuple[str | None, str | None]:
    """(uid, problem) for a uid the source carries (DataComp's pools do): 32 hex digits."""
    if value is None:
        return None, "missing_uid"
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        return None, "bad_uid"
    return value.lower(), None


def meta_text(meta: dict[str, Any] | None) -> str | None:
    """The `meta` column's JSON text of a sample's extra fields (None: there are none)."""
    return json.dumps(meta, sort_keys=True, default=str) if meta else None


def sample_row(source: str, key: str, image: bytes | None, caption: bytes | str | None, *,
               url: str | None = None, meta: dict[str, Any] | None = None,
               checks: Checks = Checks(), problem: str | None = None, uid: str | None = None,
               described: dict | None = None) -> dict:
    """A sample.v1 row; `problem` is a reason known before looking (e.g. truncated_tar); `uid`
    replaces the uid made from source and key. An image over the byte limit is not kept.
    `described` (width, height, sha256) stands for the image of a metadata-only source, which
    carries none by design: its absence is then no problem."""
    if described is not None:
        info, image_problem = described, None
    else:
        info, image_problem = inspect_image(image, checks) if problem is None else ({}, None)
    if image_problem == "image_too_many_bytes":
        image = None
    text, caption_problem = clean_caption(caption, checks.max_caption_bytes)
    return {
        "uid": uid or make_uid(source, key),
        "key": key,
        "source": source,
        "url": url,
        "caption": text,
        "image": image or None,
        "image_format": info.get("image_format"),
        "width": info.get("width"),
        "height": info.get("height"),
        "sha256": hashlib.sha256(image).hexdigest() if image else info.get("sha256"),
        "meta": meta_text(meta),
        "drop_reason": problem or image_problem or caption_problem,
    }
