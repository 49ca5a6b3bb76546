"""Export: the curated set as WebDataset shards open_clip reads as they are."""

from curate.stages.export import webdataset  # noqa: F401
