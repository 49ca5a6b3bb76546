"""`curate bench ingest`: time ingest -> select -> export of a generated pool of small JPEGs
on each executor, with samples/s and peak memory of the driver and of all its workers."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from curate.config import PipelineConfig
from curate.pipeline import run_pipeline


class MemorySampler:
    """Polls resident memory of this process and of its process tree while running."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.driver_peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            driver = me.memory_info().rss
            tree = driver
            for child in me.children(recursive=True):
                try:
                    tree += child.memory_info().rss
                except psutil.Error:
                    pass
            self.driver_peak = max(self.driver_peak, driver)
            self.tree_peak = max(self.tree_peak, tree)
            self._stop.wait(self.interval)


@dataclass
class BenchResult:
    """One timed run."""

    executor: str
    workers: int
    samples: int
    seconds: float
    driver_peak_mib: float
    tree_peak_mib: float

    @property
    def samples_per_second(self) -> float:
        """Ingested samples per wall-clock second."""
        return self.samples / self.seconds

    @property
    def per_core(self) -> float:
        """Samples per second per worker core."""
        return self.samples_per_second / self.workers


def bench_pipeline(pool: Path, run_dir: Path, samples_per_shard: int) -> PipelineConfig:
    """ingest (header check only: bytes pass through) -> select on caption/size -> export."""
    return PipelineConfig(
        name="bench-ingest",
        run_dir=run_dir,
        stages=[
            {"stage": "ingest_webdataset",
             "params": {"inputs": str(pool / "*.tar"), "check_images": "header"}},
            {"stage": "select", "params": {"filters": {
                "short_caption": "length(caption) >= 10", "small_image": "width >= 32"}}},
            {"stage": "export", "params": {"samples_per_shard": samples_per_shard}},
        ],
    )


def time_run(config: PipelineConfig, executor: str, workers: int) -> BenchResult:
    """Run the pipeline once from scratch and measure it."""
    import shutil

    shutil.rmtree(config.run_dir, ignore_errors=True)
    with MemorySampler() as memory:
        started = time.perf_counter()
        summary = run_pipeline(config, executor=executor, workers=workers)
        seconds = time.perf_counter() - started
    cores = 1 if executor == "local" else workers
    return BenchResult(executor, cores, summary["ingested"], seconds,
                       memory.driver_peak / 2**20, memory.tree_peak / 2**20)


def default_workers() -> int:
    """All cores of this machine."""
    return os.cpu_count() or 1
