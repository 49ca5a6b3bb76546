"""Expanding input patterns (brace ranges, globs, fsspec URLs) into named, fingerprinted files.

An input's name (the `source` of its samples, part of every uid) is its path relative to the
fixed folder of the pattern that matched it: `pool/{00000..00009}.tar` names `00003.tar`,
`data/*/images` names `web/images`. Adding another pattern never renames earlier inputs.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import fsspec
from braceexpand import braceexpand

from curate.errors import InputError
from curate.run import stable_hash

_WILD = re.compile(r"[*?\[{]")
_SAFE_SHARD = re.compile(r"^[A-Za-z0-9_.-]+$")
_INFO_KEYS = ("size", "mtime", "ETag", "etag", "LastModified", "last_modified", "generation")


@dataclass(frozen=True)
class InputFile:
    """One input: a URL fsspec opens, its source name, and a fingerprint of its state."""

    url: str
    name: str
    fingerprint: str


def fixed_folder(path: str) -> str:
    """The folder part of a pattern before its first wildcard or brace."""
    match = _WILD.search(path)
    return path[: match.start() if match else len(path)].rpartition("/")[0]


def _matches(item: str, want_dir: bool) -> list[tuple[str, str, dict]]:
    """(url, path, info) of everything one brace-expanded pattern names."""
    kind = "folder" if want_dir else "file"
    fs, path = fsspec.core.url_to_fs(item)
    paths = sorted(fs.glob(path)) if _WILD.search(path) else [path]
    found = []
    for found_path in paths:
        try:
            info = fs.info(found_path)
        except FileNotFoundError:
            raise InputError(f"input {item!r} does not exist; check the path or pattern") from None
        except OSError as error:
            raise InputError(f"input {item!r} cannot be read: {error}") from None
        if (info.get("type") == "directory") == want_dir:
            found.append((fs.unstrip_protocol(found_path), found_path, info))
        elif not _WILD.search(path):
            raise InputError(f"input {item!r} is not a {kind}; give {kind} paths or a pattern")
    if not found:
        raise InputError(f"input pattern {item!r} matches no {kind}; check the path")
    return found


def expand_inputs(patterns: list[str], dataset: str | None = None, want_dir: bool = False) -> list[InputFile]:
    """Every file (or folder) the patterns name, in order, each once, with distinct names."""
    files, owners = [], {}
    for pattern in patterns:
        folder = fixed_folder(fsspec.core.url_to_fs(pattern)[1])
        for item in braceexpand(pattern):
            for url, path, info in _matches(item, want_dir):
                name = posixpath.relpath(path, folder) if folder else path.lstrip("/")
                name = f"{dataset}/{name}" if dataset else name
                if owners.get(name, url) != url:
                    raise InputError(
                        f"inputs {owners[name]} and {url} would both be named {name!r}, so their "
                        f"uids could collide; match both with one pattern (e.g. data/{{a,b}}/...) "
                        f"so that their names keep the folder that tells them apart")
                if name not in owners:
                    owners[name] = url
                    files.append(InputFile(url, name, _state(info)))
    return files


def _state(info: dict) -> str:
    """A fingerprint of a file's state: size, time, and the object stores' version tags."""
    return stable_hash({k: str(info.get(k)) for k in _INFO_KEYS})


def url_fingerprint(url: str) -> str:
    """The fingerprint expand_inputs gives a file, for one URL (a missing file: its own value)."""
    try:
        return _state(fsspec.core.url_to_fs(url)[0].info(url))
    except FileNotFoundError:
        return "missing"


def shard_names(names: list[str]) -> list[str]:
    """Shard ids: the inputs' stems when those are distinct, else their names without the
    extension, else their whole names, made plain."""
    stems = [posixpath.basename(name).split(".")[0] for name in names]
    if len(set(stems)) == len(stems) and all(_SAFE_SHARD.match(s) for s in stems):
        return stems
    for candidate in ([name.rsplit(".", 1)[0] for name in names], names):
        plain = [re.sub(r"[^A-Za-z0-9_.-]+", "_", name) for name in candidate]
        if len(set(plain)) == len(plain):
            return plain
    raise InputError(f"cannot give distinct shard ids to inputs {names}; rename the files")


def numbered(count: int) -> list[str]:
    """00000, 00001, ...: ids for shards that have no name of their own."""
    width = max(5, len(str(count - 1)))
    return [f"{index:0{width}d}" for index in range(count)]


def read_bytes(url: str) -> bytes | None:
    """The bytes at a path or URL, or None when it cannot be read (a missing image is data)."""
    try:
        with fsspec.open(url, "rb") as handle:
            return handle.read()
    except Exception:  # noqa: BLE001  (each fsspec backend raises its own errors: all mean "unreadable")
        return None
