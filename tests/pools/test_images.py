"""Hostile SVGs: entity bombs, oversized files and URLs are refused, quickly, without a crash."""

from __future__ import annotations

import base64
import gzip
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.pools.emoji import _render
from curate.pools.images import (MAX_SVG_BYTES, SvgRefused, image_size, inline_entities, png_from_array,
                                 render_svg)
from curate.pools.openclipart import svg_metadata

RED = png_from_array(np.full((8, 8, 3), (255, 0, 0), dtype=np.uint8))
WHITE = '<rect width="64" height="64" fill="#ffffff"/>'


def _bomb(references: int = 20_000, value: int = 2_000) -> bytes:
    """~80 KB of references to one 2 KB entity: about 40 MB once substituted."""
    return (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY big "' + b"x" * value + b'">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><desc>'
            + b"&big;" * references + b"</desc>" + WHITE.encode() + b"</svg>")


def _svg_with_image(href: str) -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" '
            f'height="64">{WHITE}<image x="0" y="0" width="64" height="64" xlink:href="{href}"/></svg>').encode()


def _has_red(png: bytes) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return bool(((pixels[..., 0] > 200) & (pixels[..., 1] < 60)).any())


def test_an_entity_bomb_is_refused_before_it_expands() -> None:
    bomb = _bomb()
    start = time.perf_counter()
    with pytest.raises(SvgRefused, match="entity expansion"):
        inline_entities(bomb)
    with pytest.raises(SvgRefused):
        render_svg(bomb, 64)
    assert svg_metadata(bomb) is None  # unparseable: the clip-art item keeps its image, flagged metadata_error
    assert _render(("bomb", bomb, "a bomb", {})) is None  # a pool counts it as skipped_unrenderable
    assert time.perf_counter() - start < 2


def test_modest_entities_are_still_inlined() -> None:
    svg = _bomb(references=3, value=100)
    assert inline_entities(svg).count(b"x" * 100) == 3
    assert image_size(render_svg(svg, 32)) == (32, 32)


def test_an_oversized_svg_is_refused() -> None:
    huge = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><!--' + b" " * MAX_SVG_BYTES + b"--></svg>"
    with pytest.raises(SvgRefused, match="over the"):
        render_svg(huge, 8)


@pytest.mark.parametrize("href", [
    "file:///etc/hostname",
    "data:image/png;base64," + base64.b64encode(RED).decode(),
])
def test_urls_are_never_fetched(href: str) -> None:
    start = time.perf_counter()
    png = render_svg(_svg_with_image(href), 64)
    assert image_size(png) == (64, 64) and not _has_red(png) and time.perf_counter() - start < 2


def test_a_local_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(RED)
    for href in ((tmp_path / "red.png").as_uri(), "red.png"):
        assert not _has_red(render_svg(_svg_with_image(href), 64))


def test_a_gzipped_svg_in_a_data_uri_is_not_decoded() -> None:
    inner = gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
                          + b'<rect width="64" height="64" fill="#ff0000"/>' * 20_000 + b"</svg>")
    href = "data:image/svg+xml;base64," + base64.b64encode(inner).decode()
    start = time.perf_counter()
    png = render_svg(_svg_with_image(href), 64)
    assert not _has_red(png) and time.perf_counter() - start < 2
