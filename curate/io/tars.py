"""Writing WebDataset tars reproducibly: plain USTAR members (mode 0444, owner 0, mtime 0),
laid out byte for byte as Python's tarfile writes them, but without its per-member cost."""

from __future__ import annotations

import tarfile

_BLOCK = tarfile.BLOCKSIZE
_TAIL = b"0" + b"\0" * 100 + b"ustar\x0000" + b"\0" * 247
_TAIL_SUM = sum(_TAIL) + 8 * ord(" ")  # the checksum counts its own field as spaces


def tar_member(name: str, data: bytes) -> bytes:
    """One regular-file member: header, data, padding to the block size."""
    encoded = name.encode("utf-8")
    if len(encoded) > 100:
        raise ValueError(f"tar member name {name!r} is longer than USTAR's 100 bytes")
    head = encoded.ljust(100, b"\0") + b"0000444\0" + b"0000000\0" * 2
    head += b"%011o\0" % len(data) + b"00000000000\0"
    header = head + b"%06o\0 " % (sum(head) + _TAIL_SUM) + _TAIL
    return header + data + b"\0" * (-len(data) % _BLOCK)


def tar_bytes(samples: list[dict[str, bytes | str]]) -> bytes:
    """A tar of WebDataset samples ({"__key__": key, ext: bytes, ...}), members in dict order."""
    parts = []
    for sample in samples:
        key = sample["__key__"]
        for ext, data in sample.items():
            if ext != "__key__":
                parts.append(tar_member(f"{key}.{ext}", data.encode() if isinstance(data, str) else data))
    body = b"".join(parts) + b"\0" * (2 * _BLOCK)
    return body + b"\0" * (-len(body) % tarfile.RECORDSIZE)
