"""Parameters shared by the ingest stages."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator

from curate.io.inputs import expand_inputs, shard_names
from curate.io.samples import Checks
from curate.stage import DESCRIBES_ONLY, ShardSpec, SourceStage, StageParams


class IngestParams(StageParams):
    """Where the inputs are and how hard to look at each image."""

    inputs: list[str] = Field(min_length=1, description="paths, brace patterns, globs or fsspec URLs")
    dataset: str | None = Field(None, description="prefix for source names (keeps uids of pools apart)")
    check_images: Literal["decode", "header"] = Field(
        "decode", description="decode: also decode pixels (catches truncated images); header: only read the header")
    max_image_pixels: int = Field(Checks.max_pixels, ge=1, description="larger images (width x height, read "
                                  "from the header) are dropped as image_too_large without being decoded")
    max_image_bytes: int = Field(Checks.max_image_bytes, ge=1, description="larger encoded images are dropped "
                                 "as image_too_many_bytes")
    max_caption_bytes: int = Field(Checks.max_caption_bytes, ge=1, description="longer captions (UTF-8 bytes) "
                                   "are dropped as caption_too_long")
    licence: str | None = Field(None, description="the licence of these inputs' images and captions, as the "
                                "dataset card states it (a Hugging Face licence id such as cc-by-4.0, or your "
                                "words); default: the embedded pools' own, else unknown. Changing it redoes nothing",
                                json_schema_extra=DESCRIBES_ONLY)

    @cached_property
    def checks(self) -> Checks:
        """What sample_row checks each item against (built once, used for every item)."""
        return Checks(self.check_images, self.max_image_pixels, self.max_image_bytes, self.max_caption_bytes)

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class FileSource(SourceStage):
    """A source whose shards are its input files: one shard per file, named after its stem.

    Each shard's location is (URL to open, source name used in uids).
    """

    def list_shards(self) -> list[ShardSpec]:
        """One shard per input file, with a fingerprint of the file's size and time."""
        files = expand_inputs(self.params.inputs, self.params.dataset)
        names = shard_names([f.name for f in files])
        return [ShardSpec(name, (f.url, f.name), f.fingerprint) for name, f in zip(names, files)]
