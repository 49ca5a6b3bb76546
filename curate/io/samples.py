"""Turning a raw source item into a sample.v1 row: uid, caption check, image check."""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from typing import Any

from PIL import Image

# PIL format name -> the extension WebDataset and open_clip expect
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
                 "TIFF": "tiff", "MPO": "jpg"}
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff")
OPEN_CLIP_IMAGE_EXTENSIONS = ("jpg", "png", "webp")  # others are re-encoded as PNG at export
CAPTION_EXTENSIONS = ("txt",)
_DECODE_TARGET = (64, 64)
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def make_uid(source: str, key: str) -> str:
    """32 hex characters from the item's source identity (source name and key)."""
    return hashlib.sha256(f"{source}\x1f{key}".encode()).hexdigest()[:32]


def clean_caption(raw: bytes | str | None) -> tuple[str | None, str | None]:
    """(caption, problem): strip whitespace; missing, non-UTF-8 or empty captions are problems."""
    if raw is None:
        return None, "missing_caption"
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "caption_not_utf8"
    text = raw.strip()
    return (text, None) if text else (None, "empty_caption")


def inspect_image(data: bytes | None, check: str = "decode") -> tuple[dict, str | None]:
    """(format/width/height, problem) for encoded image bytes.

    check="header" reads only the header (fast, bytes pass through untouched); "decode" also
    decodes the pixels (at reduced scale for JPEG), which catches truncated files. Formats that
    export re-encodes are always decoded, so a broken one is dropped here, not at export.
    """
    if not data:
        return {}, "missing_image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            info = {"image_format": IMAGE_FORMATS.get(image.format or ""),
                    "width": image.width, "height": image.height}
            if info["image_format"] is None:
                return info, "unsupported_image_format"
            if check == "decode" or info["image_format"] not in OPEN_CLIP_IMAGE_EXTENSIONS:
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


def sample_row(source: str, key: str, image: bytes | None, caption: bytes | str | None, *,
               url: str | None = None, meta: dict[str, Any] | None = None,
               check: str = "decode", problem: str | None = None, uid: str | None = None) -> dict:
    """A sample.v1 row; `problem` is a reason known before looking (e.g. truncated_tar); `uid`
    replaces the uid made from source and key."""
    info, image_problem = inspect_image(image, check) if problem is None else ({}, None)
    text, caption_problem = clean_caption(caption)
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
        "sha256": hashlib.sha256(image).hexdigest() if image else None,
        "meta": json.dumps(meta, sort_keys=True, default=str) if meta else None,
        "drop_reason": problem or image_problem or caption_problem,
    }
