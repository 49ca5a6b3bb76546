"""Deterministic image encoding for pools: arrays and SVGs to PNG bytes, and image sizes.

The same function encodes an item for a pool and for an evaluation set, so byte-identical
images hash alike and the contamination guard can compare them by sha256.

SVGs are untrusted input. `render_svg` refuses one over `MAX_SVG_BYTES`; `inline_entities`
refuses one whose entity substitution would grow it past `len(svg) * 2 + MAX_ENTITY_GROWTH`
(checked before anything is expanded); and cairosvg gets a URL fetcher that refuses every
URL, `data:` included, so no file, host or embedded (possibly gzipped) document is read.
A refused SVG raises `SvgRefused`, which builders count as an unrenderable item.
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
MAX_SVG_BYTES = 2 * 1024 * 1024  # larger SVGs are not rendered (no pool SVG comes near: the largest is ~0.4 MB)
MAX_ENTITY_GROWTH = 1024 * 1024  # entity substitution may add at most len(svg) + this many bytes


class SvgRefused(ValueError):
    """An SVG not rendered or parsed because it is too large or would expand too much."""


def png_from_array(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 grayscale (H, W) or RGB (H, W, 3) array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def inline_entities(svg: bytes) -> bytes:
    """The SVG with its internal DTD removed and simple entities (plain literals) substituted.

    Adobe Illustrator declares namespace URIs as entities; defusedxml (rightly) refuses every
    entity declaration. Values hold no "&", so substituting them once cannot recurse; but many
    references to one long value can still multiply the size (80 KB to 400 MB), so the final
    size is computed first and an SVG that would exceed `len(svg) * 2 + MAX_ENTITY_GROWTH`
    bytes raises SvgRefused before anything is expanded.
    """
    match = _DOCTYPE.search(svg)
    if match is None or b"<!ENTITY" not in match.group("subset"):
        return svg
    values = {m.group("name"): m.group("value") for m in _ENTITY.finditer(match.group("subset"))}
    body = svg[: match.start()] + svg[match.end():]
    limit, size = len(svg) * 2 + MAX_ENTITY_GROWTH, len(body)
    for name, value in values.items():  # values have no "&": substituting one never creates another reference
        size += body.count(b"&" + name + b";") * (len(value) - len(name) - 2)
        if size > limit:
            raise SvgRefused(f"entity expansion would grow the SVG from {len(svg):,} to over {limit:,} bytes")
    for name, value in values.items():
        body = body.replace(b"&" + name + b";", value)
    return body


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image, read from its header."""
    if data[:8] == _PNG_MAGIC and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def refuse_urls(url: str, resource_type: str) -> bytes:
    """cairosvg's URL fetcher for pools: read nothing, whatever the URL (file:, http:, data:).

    An `<image>` whose bytes are empty is not drawn; an external `<use>` or stylesheet fails
    to parse, and the SVG counts as unrenderable.
    """
    return b""


def render_svg(svg: bytes, longest_side: int) -> bytes:
    """PNG bytes of an SVG rendered so that its longest side is `longest_side` pixels.

    Raises SvgRefused for an SVG over MAX_SVG_BYTES or whose entities expand too far; no URL
    it names is fetched (see `refuse_urls`).
    """
    if len(svg) > MAX_SVG_BYTES:
        raise SvgRefused(f"SVG of {len(svg):,} bytes is over the {MAX_SVG_BYTES:,}-byte limit")
    from cairosvg.surface import PNGSurface  # imported here: loading cairo costs time non-SVG pools need not pay

    svg = inline_entities(svg)
    png = PNGSurface.convert(bytestring=svg, output_width=longest_side, url_fetcher=refuse_urls)
    width, height = image_size(png)
    if height > width:
        png = PNGSurface.convert(bytestring=svg, output_height=longest_side, url_fetcher=refuse_urls)
    return png
