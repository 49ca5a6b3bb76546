"""Ingest WebDataset tars: members grouped by key into samples (image + txt + json)."""

from __future__ import annotations

import json
import tarfile
from typing import Iterator

import fsspec
from pydantic import Field

from curate.errors import InputError
from curate.io.samples import CAPTION_EXTENSIONS, IMAGE_EXTENSIONS, given_uid, sample_row
from curate.stage import ShardSpec, register
from curate.stages.ingest.common import FileSource, IngestParams

_END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE


class WebDatasetParams(IngestParams):
    """Inputs, image checks, and where uids come from."""

    uid_field: str | None = Field(None, description="take each sample's uid from this field of its .json "
                                  "(DataComp's pools carry `uid`: 32 hex digits) instead of making one from "
                                  "its file and key, so uids survive repacking; missing or malformed: dropped")


@register
class IngestWebDataset(FileSource):
    """Read WebDataset tars (local paths, brace patterns like pool/{00000..00009}.tar, URLs)."""

    name = "ingest_webdataset"
    Params = WebDatasetParams

    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """Yield one row per sample key; a sample cut by a truncated tar is a dropped row."""
        url, source = spec.location
        for key, members, problem in grouped_members(url, warnings):
            yield self._row(source, key, members, problem)

    def _row(self, source: str, key: str, members: dict[str, bytes], problem: str | None) -> dict:
        if problem is None and _unsafe_name(key):
            problem = "unsafe_member_name"  # never extracted, but a sign of a crafted archive
        image = next((members[ext] for ext in IMAGE_EXTENSIONS if ext in members), None)
        caption = next((members[ext] for ext in CAPTION_EXTENSIONS if ext in members), None)
        meta = _meta(members.get("json"))
        url = meta.get("url") if isinstance(meta.get("url"), str) else None
        uid = None
        if self.params.uid_field is not None:
            uid, uid_problem = given_uid(meta.get(self.params.uid_field))
            problem = problem or uid_problem
        return sample_row(source, key, image, caption, url=url, meta=meta or None,
                          checks=self.params.checks, problem=problem, uid=uid)


def _unsafe_name(key: str) -> bool:
    """An absolute member name, or one that climbs out of the archive with `..`."""
    return key.startswith("/") or ".." in key.split("/")


def _meta(raw: bytes | None) -> dict:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"json_invalid": raw.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"json": value}


def grouped_members(url: str, warnings: list[str]) -> Iterator[tuple[str, dict, str | None]]:
    """(key, {extension: bytes}, problem) for consecutive members sharing a key.

    When the archive ends early, the last sample may be missing members, so it is dropped as
    truncated_tar too, and a warning says that what followed is lost. A sample holding the same
    extension twice is dropped as duplicate_member (which of the two is meant is unknown). An
    empty file holds no samples: a warning says so.
    """
    try:
        with fsspec.open(url, "rb") as handle:
            size = getattr(handle, "size", None)
            if size == 0:
                warnings.append(f"{url}: the file is empty; it holds no samples")
                return
            stream = _open_tar(handle, url)
            key, members, ended_early, repeated = None, {}, None, False
            for member_key, ext, data, cut in _members(stream):
                if cut == "header":
                    ended_early = f"is cut inside a header after byte {stream.offset}"
                    break
                if member_key != key and members:
                    yield key, members, "duplicate_member" if repeated else None
                    members, repeated = {}, False
                key = member_key
                repeated = repeated or ext.lower() in members
                members[ext.lower()] = data
                if cut == "data":
                    ended_early = f"ends inside member {key}.{ext}"
                    break
            else:
                if size is not None and not _compressed(stream) and size - stream.offset < _END_OF_ARCHIVE:
                    ended_early = f"ends without its end-of-archive blocks after byte {stream.offset}"
            if ended_early:
                warnings.append(f"{url}: tar {ended_early}; items after that point are lost")
            if members:
                yield key, members, "truncated_tar" if ended_early else ("duplicate_member" if repeated else None)
    except OSError as error:
        raise InputError(f"cannot read {url}: {error}") from None


def _compressed(stream: tarfile.TarFile) -> bool:
    """A gzip/bz2/xz tar: its offsets count uncompressed bytes, not the file's."""
    return getattr(stream.fileobj, "comptype", "tar") != "tar"


def _open_tar(handle, url: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=handle, mode="r|*")
    except tarfile.TarError as error:
        raise InputError(f"{url} is not a readable tar archive ({error}); check the file") from None


def _members(stream: tarfile.TarFile) -> Iterator[tuple[str, str, bytes, str | None]]:
    """(key, extension, bytes, cut) per regular file; cut is "header" or "data" where the
    archive ends early."""
    from webdataset.tariterators import base_plus_ext  # webdataset imports torch: only tar readers pay for it

    while True:
        try:
            info = stream.next()
        except tarfile.ReadError:
            yield "", "", b"", "header"
            return
        if info is None:
            return
        if not info.isreg() or "." not in info.name.rsplit("/", 1)[-1]:
            continue
        key, ext = base_plus_ext(info.name)
        if key is None:
            continue
        try:
            data = stream.extractfile(info).read()
        except tarfile.ReadError:
            yield key, ext, b"", "data"
            return
        yield key, ext, data, None
