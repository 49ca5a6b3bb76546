"""Every pipeline shipped in pipelines/ is valid: known stages, valid params, sound layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate import load_pipeline
from curate.pipeline import validate_layout

PIPELINES = sorted((Path(__file__).resolve().parent.parent / "pipelines").glob("*.yaml"))


def test_there_are_pipelines():
    assert {p.stem for p in PIPELINES} >= {"quickstart", "synthetic"}


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_shipped_pipeline_is_valid(path):
    config = load_pipeline(path)
    validate_layout(config.build_stages())
