"""Parameters shared by the ingest stages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from curate.stage import StageParams


class IngestParams(StageParams):
    """Where the inputs are and how hard to look at each image."""

    inputs: list[str] = Field(min_length=1, description="paths, brace patterns, globs or fsspec URLs")
    dataset: str | None = Field(None, description="prefix for source names (keeps uids of pools apart)")
    check_images: Literal["decode", "header"] = Field(
        "decode", description="decode: also decode pixels (catches truncated images); header: only read the header")

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value
