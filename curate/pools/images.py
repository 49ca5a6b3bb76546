"""Deterministic image encoding for pools: arrays and SVGs to PNG bytes, and image sizes.

The same function encodes an item for a pool and for an evaluation set, so byte-identical
images hash alike and the contamination guard can compare them by sha256.
"""

from __future__ import annotations

import io
import re
import struct

import numpy as np
from PIL import Image

_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*\[(?P<subset>.*?)\]\s*>", re.S)
_ENTITY = re.compile(rb"""<!ENTITY\s+(?P<name>[A-Za-z_][\w.-]*)\s+(?P<q>["'])(?P<value>[^"'&%<]*)(?P=q)\s*>""")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_from_array(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 grayscale (H, W) or RGB (H, W, 3) array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def inline_entities(svg: bytes) -> bytes:
    """The SVG with its internal DTD removed and simple entities (plain literals) substituted.

    Adobe Illustrator declares namespace URIs as entities; defusedxml (rightly) refuses every
    entity declaration. Substituting literal values once cannot expand recursively, so it is safe.
    """
    match = _DOCTYPE.search(svg)
    if match is None or b"<!ENTITY" not in match.group("subset"):
        return svg
    values = {m.group("name"): m.group("value") for m in _ENTITY.finditer(match.group("subset"))}
    body = svg[: match.start()] + svg[match.end():]
    for name, value in values.items():
        body = body.replace(b"&" + name + b";", value.replace(b'"', b"&quot;"))
    return body


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image, read from its header."""
    if data[:8] == _PNG_MAGIC and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def render_svg(svg: bytes, longest_side: int) -> bytes:
    """PNG bytes of an SVG rendered so that its longest side is `longest_side` pixels."""
    import cairosvg  # imported here: loading cairo costs time that non-SVG pools need not pay

    svg = inline_entities(svg)
    png = cairosvg.svg2png(bytestring=svg, output_width=longest_side)
    width, height = image_size(png)
    if height > width:
        png = cairosvg.svg2png(bytestring=svg, output_height=longest_side)
    return png
