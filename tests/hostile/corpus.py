"""A hostile-input corpus, built from scratch: every kind of bad sample, tar, table and URL a
long run may meet, each with what ingest must make of it (None: a usable sample)."""

from __future__ import annotations

import functools
import io
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import noisy_jpeg

MAX_IMAGE_BYTES = 200_000  # the corpus's runs lower the byte limit so one noisy image exceeds it
CAPTION = b"a red square on a white background"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40"/></svg>'


def _picture(mode: str = "RGB", side: int = 48) -> Image.Image:
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[8:40, 8:40] = (200, 30, 30)
    pixels[:, :, 2] = np.arange(side, dtype=np.uint8)[:, None] * 4
    return Image.fromarray(pixels).convert(mode)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but whose data is a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _animated_gif() -> bytes:
    frames = [_picture("P"), _picture("RGB").rotate(90).convert("P")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


@functools.cache
def image_kinds() -> dict[str, tuple[str, bytes, str | None]]:
    """kind -> (member extension, image bytes, the drop reason ingest must give)."""
    rgb = _picture()
    sixteen = Image.fromarray((np.arange(48 * 48, dtype=np.uint16).reshape(48, 48) * 28)).convert("I;16")
    jpeg, png = _encode(rgb, "JPEG"), _encode(rgb, "PNG")
    return {
        "jpeg": ("jpg", jpeg, None),
        "png": ("png", png, None),
        "grey_jpeg": ("jpg", _encode(_picture("L"), "JPEG"), None),
        "cmyk_jpeg": ("jpg", _encode(_picture("CMYK"), "JPEG"), None),
        "png_16_bit": ("png", _encode(sixteen, "PNG"), None),
        "palette_png": ("png", _encode(_picture("P"), "PNG"), None),
        "alpha_png": ("png", _encode(_picture("RGBA"), "PNG"), None),
        "grey_alpha_png": ("png", _encode(_picture("LA"), "PNG"), None),
        "animated_gif": ("gif", _animated_gif(), None),
        "webp": ("webp", _encode(rgb, "WEBP"), None),
        "bmp": ("bmp", _encode(rgb, "BMP"), None),
        "tiff": ("tiff", _encode(rgb, "TIFF"), None),
        "upper_case_extension": ("JPG", jpeg, None),
        "one_pixel": ("png", _encode(_picture(side=1), "PNG"), None),
        "decompression_bomb": ("png", _encode(Image.new("1", (10_001, 10_001)), "PNG"), "image_too_large"),
        "header_claims_huge": ("png", _png_claiming(65_535, 65_535), "image_too_large"),
        "too_many_bytes": ("jpg", noisy_jpeg(600), "image_too_many_bytes"),
        "svg_as_jpg": ("jpg", SVG, "not_an_image"),
        "html_as_jpg": ("jpg", b"<!doctype html><html><body>404 not found</body></html>", "not_an_image"),
        "text_as_png": ("png", b"just some words, not a picture at all", "not_an_image"),
        "zero_byte_jpeg": ("jpg", b"", "empty_image"),
        "corrupt_jpeg": ("jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt_image"),
        "truncated_jpeg": ("jpg", noisy_jpeg(96)[:4000], "corrupt_image"),
        "truncated_png": ("png", png[: len(png) // 2], "corrupt_image"),
    }


def caption_kinds() -> dict[str, tuple[bytes, str | None]]:
    """kind -> (caption bytes, the drop reason ingest must give)."""
    return {
        "empty_caption": (b"", "empty_caption"),
        "whitespace_caption": (b" \t\r\n  ", "empty_caption"),
        "megabyte_caption": (b"red square " * 100_000, "caption_too_long"),
        "not_utf8_caption": (b"caf\xe9 \xff\xfe square", "caption_not_utf8"),
        "script_caption": (b"<script>alert('x')</script> a red square on white", None),
    }


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o444
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def sample_tar(path: Path) -> list[tuple[str, str | None]]:
    """Write the per-sample corpus as one tar; return (key, expected drop reason) per sample row
    ingest must write, in order."""
    jpeg = image_kinds()["jpeg"][1]
    members, expected = [], []
    for kind, (ext, data, reason) in image_kinds().items():
        members += [_member(f"{kind}.{ext}", data), _member(f"{kind}.txt", CAPTION)]
        expected.append((kind, reason))
    for kind, (caption, reason) in caption_kinds().items():
        members += [_member(f"{kind}.jpg", jpeg), _member(f"{kind}.txt", caption)]
        expected.append((kind, reason))
    odd = [
        ("no_image", [_member("no_image.txt", CAPTION)], "missing_image"),
        ("no_caption", [_member("no_caption.jpg", jpeg)], "missing_caption"),
        ("bad_json", [_member("bad_json.jpg", jpeg), _member("bad_json.txt", CAPTION),
                      _member("bad_json.json", b"{not json")], None),
        ("svg_member", [_member("svg_member.svg", SVG), _member("svg_member.txt", CAPTION)], "missing_image"),
        ("/absolute/name", [_member("/absolute/name.jpg", jpeg), _member("/absolute/name.txt", CAPTION)],
         "unsafe_member_name"),
        ("../../climbs", [_member("../../climbs.jpg", jpeg), _member("../../climbs.txt", CAPTION)],
         "unsafe_member_name"),
        ("repeated", [_member("repeated.jpg", jpeg), _member("repeated.txt", CAPTION)], None),
        ("two_images", [_member("two_images.jpg", jpeg), _member("two_images.jpg", _encode(_picture("L"), "JPEG")),
                        _member("two_images.txt", CAPTION)], "duplicate_member"),
        ("symlink", [_link("symlink.jpg", "/etc/passwd", tarfile.SYMTYPE), _member("symlink.txt", CAPTION)],
         "missing_image"),
        ("hardlink", [_link("hardlink.jpg", "jpeg.jpg", tarfile.LNKTYPE), _member("hardlink.txt", CAPTION)],
         "missing_image"),
        ("repeated", [_member("repeated.jpg", jpeg), _member("repeated.txt", CAPTION)], "duplicate_key"),
    ]
    for key, parts, reason in odd:
        members += parts
        expected.append((key, reason))
    members.insert(0, (_directory("folder"), None))
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return expected


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def tar_kinds(folder: Path) -> dict[str, tuple[int, str | None]]:
    """Whole-file kinds: file name -> (samples ingest must read from it, a warning's words or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    three = io.BytesIO()
    with tarfile.open(fileobj=three, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for index in range(3):
            for info, data in (_member(f"s{index}.jpg", noisy_jpeg(64 + index)), _member(f"s{index}.txt", CAPTION)):
                tar.addfile(info, io.BytesIO(data))
    whole = three.getvalue()
    (folder / "cut.tar").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.tar").write_bytes(b"")
    (folder / "only_end_blocks.tar").write_bytes(b"\0" * 10240)
    (folder / "gzipped.tar").write_bytes(_gzip(whole))
    return {"cut.tar": (2, "items after that point are lost"), "empty.tar": (0, "the file is empty"),
            "only_end_blocks.tar": (0, None), "gzipped.tar": (3, None)}


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)
