"""Every pipeline shipped in pipelines/ is valid: known stages, valid params, sound layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate import load_pipeline
from curate.pipeline import validate_layout

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "pipelines").glob("*.yaml"))
PIPELINES = [p for p in SHIPPED if not p.stem.startswith("benchmark-")]
BENCHMARKS = [p for p in SHIPPED if p.stem.startswith("benchmark-")]


def test_there_are_pipelines():
    assert {p.stem for p in PIPELINES} >= {"quickstart", "synthetic"}


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_shipped_pipeline_is_valid(path):
    config = load_pipeline(path)
    validate_layout(config.build_stages())


@pytest.mark.parametrize("path", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_shipped_benchmark_is_valid(path):
    """Every strategy makes a valid pipeline: the shared stages, its own, the export."""
    from curate.benchmark.config import load_benchmark
    from curate.benchmark.curation import strategy_stages
    from curate.config import PipelineConfig

    config = load_benchmark(path)
    assert len(config.seeds) >= 3 and len(config.strategies) >= 5
    for strategy in config.strategies:
        pipeline = PipelineConfig(name=strategy.slug, run_dir=config.out, stages=strategy_stages(config, strategy))
        validate_layout(pipeline.build_stages())
