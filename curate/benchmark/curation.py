"""Curating the pool once per strategy. The shared stages (ingest and the scores) run once, in
OUT/pool; every strategy's run starts from hard links to their committed outputs, so each
strategy only runs its own stages and the export (DataComp's "scores once, filters many")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from curate.benchmark.config import BenchmarkConfig, Strategy
from curate.config import PipelineConfig, StageEntry
from curate.pipeline import run_pipeline
from curate.progress import NullProgress

POOL_RUN = "pool"


def shared_stages(config: BenchmarkConfig) -> list[StageEntry]:
    """The ingest stage and the scores, run once for all strategies."""
    return [config.pool, *config.scores]


def strategy_stages(config: BenchmarkConfig, strategy: Strategy) -> list[StageEntry]:
    """A strategy's whole pipeline: the shared stages, its own, the export."""
    return [*shared_stages(config), *strategy.stages, StageEntry(stage="export", params=config.export)]


def strategy_dir(config: BenchmarkConfig, strategy: Strategy) -> Path:
    """Where a strategy's curation run, trained models and evaluations go."""
    return config.out / "strategies" / strategy.slug


def _pipeline(config: BenchmarkConfig, name: str, run_dir: Path, stages: list[StageEntry]) -> PipelineConfig:
    return PipelineConfig(name=name, run_dir=run_dir, executor=config.executor, serve=config.serve, stages=stages)


def score_pool(config: BenchmarkConfig, progress: NullProgress | None = None) -> dict:
    """Ingest and score the whole pool once; the run's summary."""
    pipeline = _pipeline(config, f"{config.name}-pool", config.out / POOL_RUN, shared_stages(config))
    return run_pipeline(pipeline, progress=progress)


def curate_strategy(config: BenchmarkConfig, strategy: Strategy, progress: NullProgress | None = None) -> dict:
    """Run one strategy on the scored pool and export its subset; the run's summary, with its
    folder under `run_dir` and the folder of its shards under `shards`."""
    run_dir = strategy_dir(config, strategy) / "curation"
    _link_committed(config.out / POOL_RUN, run_dir, [entry.id or entry.stage for entry in shared_stages(config)])
    pipeline = _pipeline(config, f"{config.name}-{strategy.slug}", run_dir, strategy_stages(config, strategy))
    summary = run_pipeline(pipeline, progress=progress)
    return {**summary, "run_dir": str(run_dir), "shards": str(run_dir / "export" / "shards")}


def _link_committed(source: Path, run_dir: Path, stage_ids: list[str]) -> None:
    """Give `run_dir` the shared stages' outputs as hard links (a stage it has already is left
    alone; every writer replaces files by renaming, so a link is never written through)."""
    for stage_id in stage_ids:
        target = run_dir / stage_id
        if not target.exists() and (source / stage_id).is_dir():
            shutil.copytree(source / stage_id, target, copy_function=os.link)
