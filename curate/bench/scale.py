"""`curate bench scale`: the quickstart pipeline (its DFN, a tiny CLIP, scoring the images) on
generated pools of growing size on the Ray executor: seconds per stage, peak memory of the driver
and of the largest worker, and the cost per sample: whether cost grows linearly with the pool,
and whether the driver's memory grows with it."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from curate.bench.memory import MemorySampler
from curate.config import PipelineConfig, load_pipeline
from curate.errors import ConfigError
from curate.pipeline import run_pipeline


@dataclass
class ScaleResult:
    """One run of the pipeline on one pool."""

    samples: int
    curated: int
    workers: int
    seconds: float
    stage_seconds: dict[str, float]
    driver_peak_mib: float
    worker_peak_mib: float
    tree_peak_mib: float

    @property
    def core_ms_per_sample(self) -> float:
        """Milliseconds of the machine's cores (wall-clock seconds x workers) per sample."""
        return 1000 * self.seconds * self.workers / self.samples


def scale_pipeline(quickstart: Path, pool: Path, run_dir: Path) -> PipelineConfig:
    """The quickstart pipeline with its URL ingest replaced by the generated pool's tars (decoded
    as the quickstart decodes its downloads); every other stage and parameter as it is."""
    config = load_pipeline(quickstart, run_dir)
    missing = [path for stage in config.stages for path in _local_files(stage.params)
               if not Path(path).exists()]
    if missing:
        raise ConfigError(f"the quickstart's models and lists are missing ({', '.join(missing)}); run "
                          f"`make demo` once to build them")
    stages = [{"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar")}},
              *(stage.model_dump(mode="json") for stage in config.stages[1:])]
    return PipelineConfig(name="bench-scale", run_dir=run_dir, stages=stages)


def _local_files(params: dict) -> list[str]:
    names = ("weights", "metadata", "eval_sets")
    found = [params.get(name) for name in names]
    flat = [p for value in found for p in (value if isinstance(value, list) else [value])]
    return [p for p in flat if isinstance(p, str)]


def time_scale_run(config: PipelineConfig, workers: int) -> ScaleResult:
    """Run the pipeline from scratch on the Ray executor and measure it."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
    with MemorySampler() as memory:
        started = time.perf_counter()
        summary = run_pipeline(config, executor="ray", workers=workers)
        seconds = time.perf_counter() - started
    stage_seconds = {stage["stage_id"]: stage["wall_seconds"] for stage in summary["stages"]}
    return ScaleResult(summary["ingested"], summary["curated"], workers, seconds, stage_seconds,
                       memory.driver_peak / 2**20, memory.child_peak / 2**20, memory.tree_peak / 2**20)
