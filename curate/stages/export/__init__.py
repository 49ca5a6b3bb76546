"""Export: the curated set as WebDataset shards open_clip reads as they are, or (metadata-only
runs) as DataComp's subset file with the curated metadata."""

from curate.stages.export import subset, webdataset  # noqa: F401
