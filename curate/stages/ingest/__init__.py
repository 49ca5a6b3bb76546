"""Ingest stages: WebDataset tars, Parquet/CSV/JSONL tables, folders of images, URL lists."""

from curate.stages.ingest import datacomp, folder, table, urls, webdataset  # noqa: F401
