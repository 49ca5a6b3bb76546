"""curate select: a new export from a finished run's scores, recomputing none."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import ConfigError, InputError, load_pipeline, run_pipeline
from curate.cli import app
from curate.selection import select_from_run
from conftest import output_files, write_pipeline

STAGES = [{"stage": "caption_stats"},
          {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 3"}}},
          {"stage": "export", "params": {"samples_per_shard": 10}}]


@pytest.fixture
def finished(tmp_path, pool):
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run", stages=STAGES)
    summary = run_pipeline(load_pipeline(pipeline))
    return tmp_path / "run", summary


def test_a_selection_reuses_every_score_and_exports_what_it_keeps(finished):
    run_dir, first = finished
    before = output_files(run_dir)
    summary = select_from_run(run_dir, "caption_words >= 6", "long")
    stages = {s["stage_id"]: s for s in summary["stages"]}
    for stage_id in ("ingest_webdataset", "caption_stats", "select"):
        assert stages[stage_id]["reused"] == stages[stage_id]["shards"] == 3, stage_id
    assert stages["selection"]["drop_counts"] == {"long": 20}  # "two yellow stars on black": 5 words
    assert summary["curated"] == first["curated"] - 20 == 40
    exported = pq.read_table(sorted((run_dir / "selections" / "long" / "export" / "shards").glob("*.parquet")))
    assert all(len(caption.split()) >= 6 for caption in exported.column("caption").to_pylist())
    after = output_files(run_dir)
    assert {k: v for k, v in after.items() if not k.startswith("selections/")} == before  # the run is untouched


def test_the_cli_and_its_errors(finished, tmp_path):
    run_dir, _ = finished
    result = CliRunner().invoke(app, ["select", str(run_dir), "--where", "caption_chars > 33", "--name", "longest",
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "selections" / "longest" / "summary.json").read_text())
    assert summary["curated"] == 20
    assert (run_dir / "selections" / "longest" / "report.html").is_file()
    assert "20 image-text pairs" in (run_dir / "selections" / "longest" / "export" / "shards" / "README.md").read_text()
    again = CliRunner().invoke(app, ["select", str(run_dir), "--where", "caption_chars > 40", "--name", "longest",
                                     "--quiet"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(app, ["select", str(run_dir), "--where", "caption_chars > 40", "--name", "longest",
                                      "--quiet", "--force", "--no-report"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((run_dir / "selections" / "longest" / "summary.json").read_text())["curated"] < 20
    assert not (run_dir / "selections" / "longest" / "report.html").exists()  # replaced whole
    failed = CliRunner().invoke(app, ["select", str(run_dir), "--where", "no_such_column > 1", "--name", "broken",
                                      "--quiet"])
    assert failed.exit_code == 2 and not (run_dir / "selections" / "broken").exists()
    with pytest.raises(ConfigError, match="snake_case"):
        select_from_run(run_dir, "caption_words > 1", "Bad Name")
    with pytest.raises(InputError, match="not a run directory|has not finished"):
        select_from_run(tmp_path / "nowhere", "caption_words > 1", "x")
