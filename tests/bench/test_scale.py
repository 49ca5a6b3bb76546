"""`curate bench scale --pool datacomp-like`: the metadata-only pipeline of the scale benchmark
runs, on Ray, and its peaks are attributed to each stage."""

from __future__ import annotations

from curate.bench.scale import metadata_pipeline, stage_peaks, time_metadata_run
from curate.metaclip.metadata import write_metadata


def test_the_metadata_only_pipeline_runs_on_ray_with_peaks_per_stage(datacomp_pool, tmp_path, ray_session):
    metadata = tmp_path / "metadata.json"
    write_metadata(metadata, ["circle", "square", "red", "blue", "green", "star", "shape", "picture"])
    config = metadata_pipeline(datacomp_pool, tmp_path / "run", metadata, 2500)
    result, peaks = time_metadata_run(config, workers=2)
    assert result.samples == 2500 and 0 < result.curated < 2500
    stages = [stage.id for stage in config.build_stages()]
    assert list(result.stage_seconds) == stages + ["check"]
    assert set(peaks) == set(stages) | {"check"}


def test_a_stage_peak_is_the_largest_poll_inside_its_spans():
    spans = [("a", 0.0, 1.0), ("b", 1.0, 2.0), ("a", 2.0, 3.0)]
    timeline = [(0.5, 10, 100), (1.5, 20, 300), (2.5, 15, 200), (4.0, 99, 999)]
    assert stage_peaks(spans, timeline) == {"a": (200, 15), "b": (300, 20)}
