"""Ingest folders of images with caption files beside them (cat.jpg + cat.txt)."""

from __future__ import annotations

import posixpath
from typing import Iterator

import fsspec
from pydantic import Field

from curate.errors import InputError
from curate.io.inputs import expand_inputs, numbered, read_bytes
from curate.io.samples import IMAGE_EXTENSIONS, sample_row
from curate.run import stable_hash
from curate.stage import ShardSpec, SourceStage, register
from curate.stages.ingest.common import IngestParams


class FolderParams(IngestParams):
    """Folders to walk and how many images go in one shard."""

    files_per_shard: int = Field(1000, ge=1, description="images per shard of work (sorted path order)")
    caption_extension: str = Field("txt", description="extension of the caption file beside each image")


@register
class IngestFolder(SourceStage):
    """Walk folders (recursively) for images; each image's caption is the .txt beside it.

    Inputs are folders or folder patterns (data/*/images). The source name is the folder's
    path relative to its pattern's fixed folder (prefixed by `dataset`), and the key is the
    image's path in the folder without its extension.
    """

    name = "ingest_folder"
    Params = FolderParams

    def list_shards(self) -> list[ShardSpec]:
        """Shards of files_per_shard images, in sorted path order across all folders."""
        items = []
        for folder in expand_inputs(self.params.inputs, self.params.dataset, want_dir=True):
            items += self._folder_items(folder.url, folder.name)
        size = self.params.files_per_shard
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        return [ShardSpec(shard, tuple(chunk), stable_hash(chunk))
                for shard, chunk in zip(numbered(len(chunks)), chunks)]

    def _folder_items(self, folder: str, source: str) -> list[tuple]:
        fs, root = fsspec.core.url_to_fs(folder)
        found = fs.find(root, detail=True)
        caption_ext = f".{self.params.caption_extension}"
        items = []
        for path in sorted(found):
            stem, _, ext = path.rpartition(".")
            if ext.lower() not in IMAGE_EXTENSIONS:
                continue
            caption = found.get(stem + caption_ext)
            key = posixpath.relpath(stem, root)
            state = [found[path].get("size"), str(found[path].get("mtime")),
                     caption and caption.get("size"), caption and str(caption.get("mtime"))]
            items.append((source, key, fs.unstrip_protocol(path),
                          fs.unstrip_protocol(stem + caption_ext) if caption else None, state))
        if not items:
            raise InputError(f"input folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return items

    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """One row per image file."""
        for source, key, image_url, caption_url, _ in spec.location:
            image = read_bytes(image_url)
            caption = read_bytes(caption_url) if caption_url else None
            yield sample_row(source, key, image, caption, checks=self.params.checks)

