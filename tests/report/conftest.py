"""A small finished run with every kind of report section, shared by the report tests."""

import json
from pathlib import Path

import pytest

from curate.bench.report import report_pipeline
from curate.pipeline import run_pipeline
from curate.pools import build

WORDS = ["circle", "star", "square", "ring", "triangle", "red", "blue", "green", "white", "gray", "backdrop",
         "purple", "orange", "picture", "image"]


@pytest.fixture(scope="package")
def small_run(tmp_path_factory) -> Path:
    """400 generated samples (planted duplicates and junk captions) through caption scores,
    filters, exact dedup, a top fraction, MetaCLIP balancing and export, in shards of 100."""
    root = tmp_path_factory.mktemp("report")
    build("synthetic", root / "pool", n=400, samples_per_shard=100)
    metadata = root / "metadata.json"
    metadata.write_text(json.dumps(WORDS))
    config = report_pipeline(root / "pool", root / "run", metadata, samples_per_shard=100)
    run_pipeline(config, executor="local")
    return root / "run"
