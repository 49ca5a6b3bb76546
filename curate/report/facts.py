"""A finished run as its report sees it: summary, pipeline, stages, and where its samples lie."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from curate.config import load_pipeline
from curate.errors import InputError
from curate.run import RunDir
from curate.scan import scan
from curate.stage import SourceStage, Stage


@dataclass
class RunFacts:
    """What every section of a run report reads."""

    root: Path
    summary: dict
    pipeline_text: str
    stages: list[Stage]

    @property
    def source(self) -> SourceStage:
        """The ingest stage."""
        return self.stages[0]

    @cached_property
    def source_files(self) -> list[Path]:
        """The ingest stage's Parquet output, shard by shard (the image bytes live there)."""
        record = RunDir(self.root).stage_record(self.source.id) or {}
        return [RunDir(self.root).output_path(self.source.id, shard) for shard in record.get("shards", [])]

    def details(self, stage_id: str) -> dict | None:
        """A stage's own figures from the run summary (global stages), or None."""
        for stage in self.summary.get("stages", []):
            if stage["stage_id"] == stage_id:
                return stage.get("details")
        return None

    def stages_named(self, name: str) -> list[Stage]:
        """The run's stages of one registry name."""
        return [stage for stage in self.stages if stage.name == name]

    def samples(self) -> pl.LazyFrame:
        """Every sample with every sidecar column, drop_reason, dropped_by and kept (the run is
        scanned once per report)."""
        return self._scanned

    @cached_property
    def _scanned(self) -> pl.LazyFrame:
        return scan(self.root)

    def ingested(self) -> int:
        """Rows of the ingest stage's Parquet output: every sample that entered the run."""
        return sum(pq.read_metadata(path).num_rows for path in self.source_files)

    def dropped(self) -> pl.LazyFrame:
        """RUN/dropped.parquet: uid, key, source, caption, drop_reason, dropped_by."""
        return pl.scan_parquet(self.root / "dropped.parquet")

    def resolve(self, path: str | Path) -> Path | None:
        """A path from the pipeline file: as given (relative to where the run was started,
        tried here and above the run directory), or None when it cannot be found."""
        path = Path(path)
        if path.is_absolute():
            return path if path.exists() else None
        for base in (Path.cwd(), *self.root.resolve().parents):
            if (base / path).exists():
                return base / path
        return None


def load_run(run_dir: str | Path) -> RunFacts:
    """Read a finished run directory; a clear error for anything else."""
    root = Path(run_dir)
    if not (root / "pipeline.yaml").is_file():
        raise InputError(f"{root} is not a run directory (no pipeline.yaml): give the run_dir of a `curate run`")
    if not (root / "summary.json").is_file():
        raise InputError(f"{root} has not finished (no summary.json): run the pipeline again to finish it, "
                         f"then build its report")
    config = load_pipeline(root / "pipeline.yaml", run_dir=root)
    return RunFacts(root, json.loads((root / "summary.json").read_text()),
                    (root / "pipeline.yaml").read_text(), config.build_stages())
