"""Writing WebDataset tars reproducibly (same samples -> same bytes)."""

from __future__ import annotations

import io

from webdataset import TarWriter

OPEN_CLIP_IMAGE_EXTENSIONS = ("jpg", "png", "webp")


def tar_bytes(samples: list[dict[str, bytes | str]]) -> bytes:
    """A tar of WebDataset samples ({"__key__": ..., ext: bytes}) with fixed metadata."""
    buffer = io.BytesIO()
    with TarWriter(buffer, user="", group="", mode=0o444, mtime=0.0, encoder=False) as writer:
        for sample in samples:
            writer.write(sample)
    return buffer.getvalue()
