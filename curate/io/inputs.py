"""Expanding input patterns (brace ranges, globs, fsspec URLs) into named, fingerprinted files."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import fsspec
from braceexpand import braceexpand

from curate.errors import InputError
from curate.run import stable_hash

_GLOB = re.compile(r"[*?\[]")
_SAFE_SHARD = re.compile(r"^[A-Za-z0-9_.-]+$")
_INFO_KEYS = ("size", "mtime", "ETag", "etag", "LastModified", "last_modified", "generation")


@dataclass(frozen=True)
class InputFile:
    """One input file: a URL fsspec opens, its source name, and a fingerprint of its state."""

    url: str
    name: str
    fingerprint: str


def _matches(item: str) -> list[tuple[str, str, dict]]:
    fs, path = fsspec.core.url_to_fs(item)
    paths = sorted(fs.glob(path)) if _GLOB.search(path) else [path]
    if not paths:
        raise InputError(f"input pattern {item!r} matches no file; check the path")
    found = []
    for found_path in paths:
        try:
            info = fs.info(found_path)
        except FileNotFoundError:
            raise InputError(f"input {item!r} does not exist; check the path or pattern") from None
        except OSError as error:
            raise InputError(f"input {item!r} cannot be read: {error}") from None
        if info.get("type") == "directory":
            raise InputError(f"input {item!r} is a directory; give file paths or a pattern")
        found.append((fs.unstrip_protocol(found_path), found_path, info))
    return found


def expand_inputs(patterns: list[str], dataset: str | None = None) -> list[InputFile]:
    """Every file the patterns name, in order, each once; missing files are an InputError."""
    found, seen = [], set()
    for pattern in patterns:
        for item in braceexpand(pattern):
            for url, path, info in _matches(item):
                if url not in seen:
                    seen.add(url)
                    found.append((url, path, info))
    if not found:
        raise InputError(f"no input files in {patterns}")
    root = os.path.commonpath([os.path.dirname(path) for _, path, _ in found])
    files = []
    for url, path, info in found:
        name = os.path.relpath(path, root) if root else path
        name = f"{dataset}/{name}" if dataset else name
        files.append(InputFile(url, name, stable_hash({k: str(info.get(k)) for k in _INFO_KEYS})))
    return files


def shard_names(names: list[str]) -> list[str]:
    """Shard ids: the files' stems when those are distinct and plain, else 00000, 00001, ..."""
    stems = [os.path.basename(name).split(".")[0] for name in names]
    if len(set(stems)) == len(stems) and all(_SAFE_SHARD.match(s) for s in stems):
        return stems
    width = max(5, len(str(len(names) - 1)))
    return [f"{index:0{width}d}" for index in range(len(names))]
