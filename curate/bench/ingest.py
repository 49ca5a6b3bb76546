"""`curate bench ingest`: time ingest -> select -> export of a generated pool of small JPEGs
on each executor, with samples/s and peak memory of the driver and of all its workers."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from curate.bench.memory import MemorySampler
from curate.config import PipelineConfig
from curate.pipeline import run_pipeline


@dataclass
class BenchResult:
    """One timed run."""

    executor: str
    workers: int
    samples: int
    seconds: float
    driver_peak_mib: float
    tree_peak_mib: float
    ingest_seconds: float  # the ingest stage's wall-clock seconds

    @property
    def samples_per_second(self) -> float:
        """Ingested samples per wall-clock second."""
        return self.samples / self.seconds

    @property
    def per_core(self) -> float:
        """Samples per second per worker core."""
        return self.samples_per_second / self.workers


def bench_pipeline(pool: Path, run_dir: Path, samples_per_shard: int, fmt: str = "webdataset") -> PipelineConfig:
    """ingest (header check only: bytes pass through) -> select on caption/size -> export; the
    pool's tars (ingest_webdataset) or its Parquet tables of image bytes (ingest_table)."""
    ingest = ({"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar"), "check_images": "header"}}
              if fmt == "webdataset" else
              {"stage": "ingest_table", "params": {"inputs": str(pool / "*.parquet"), "check_images": "header"}})
    return PipelineConfig(
        name="bench-ingest",
        run_dir=run_dir,
        stages=[
            ingest,
            {"stage": "select", "params": {"filters": {
                "short_caption": "length(caption) >= 10", "small_image": "width >= 32"}}},
            {"stage": "export", "params": {"samples_per_shard": samples_per_shard}},
        ],
    )


def time_run(config: PipelineConfig, executor: str, workers: int) -> BenchResult:
    """Run the pipeline once from scratch and measure it."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
    with MemorySampler() as memory:
        started = time.perf_counter()
        summary = run_pipeline(config, executor=executor, workers=workers)
        seconds = time.perf_counter() - started
    cores = 1 if executor == "local" else workers
    return BenchResult(executor, cores, summary["ingested"], seconds,
                       memory.driver_peak / 2**20, memory.tree_peak / 2**20, summary["stages"][0]["wall_seconds"])


def default_workers() -> int:
    """All cores of this machine."""
    return os.cpu_count() or 1
