"""Ingest stages: WebDataset tars, Parquet/CSV/JSONL tables, folders of images."""

from curate.stages.ingest import folder, table, webdataset  # noqa: F401
