"""`curate bench scale`: the quickstart pipeline (its DFN, a tiny CLIP, scoring the images) on
generated pools of growing size on the Ray executor: seconds per stage, peak memory of the driver
and of the largest worker, and the cost per sample: whether cost grows linearly with the pool,
and whether the driver's memory grows with it. With `--pool datacomp-like`, the global stages on
metadata-only pools (DataComp's layout) of millions of rows, with the peaks of each stage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from curate.bench.memory import MemorySampler
from curate.config import PipelineConfig, load_pipeline
from curate.errors import ConfigError
from curate.pipeline import run_pipeline
from curate.progress import NullProgress


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


# The metadata-only scale benchmark: a DataComp-layout pool through the global stages.
T_PER_SAMPLE = 20_000 / 400e6  # MetaCLIP's t, scaled to the pool (20,000 for 400M captions)
ROWS_PER_PARTITION = 250_000  # of the pool, for the partitioned reduces: P grows with the pool


def metadata_pipeline(pool: Path, run_dir: Path, metadata: Path, n: int) -> PipelineConfig:
    """ingest -> basic filter -> exact and semantic deduplication -> top half by L/14 score ->
    MetaCLIP matching and balancing -> subset, on the pool's metadata and B/32 embeddings. The
    partitioned reduces and the end-of-run check get one partition per 250,000 samples of the
    pool, as an operator sizes them to the workers, so that a task's share stays the same."""
    partitions = max(1, n // ROWS_PER_PARTITION)
    stages = [
        {"stage": "ingest_datacomp", "params": {"inputs": str(pool / "metadata" / "*.parquet"),
                                                "embeddings": ["b32_img"]}},
        {"stage": "basic_filter"},
        {"stage": "dedup_exact", "params": {"partitions": partitions}},
        {"stage": "semdedup", "params": {"embedding": "b32_img", "partitions": partitions}},
        {"stage": "select_top_fraction", "params": {"column": "clip_l14_similarity_score", "fraction": 0.5}},
        {"stage": "metaclip_match", "params": {"metadata": str(metadata)}},
        {"stage": "metaclip_balance", "params": {"t": max(1.0, T_PER_SAMPLE * n)}},
        {"stage": "export_subset"},
    ]
    return PipelineConfig(name="bench-scale-metadata", run_dir=run_dir, stages=stages,
                          executor={"kind": "ray", "check_partitions": partitions})


class PhaseTimes(NullProgress):
    """A progress that shows nothing and records when each stage's phases ran (label -> spans)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []

    @contextmanager
    def stage(self, label: str, total: int, done: int = 0):
        """Record the span of one stage's phase."""
        started = time.perf_counter()
        try:
            with super().stage(label, total, done) as bar:
                yield bar
        finally:
            self.spans.append((label.split(" (")[0], started, time.perf_counter()))


def stage_peaks(spans: list[tuple[str, float, float]], timeline: list[tuple[float, int, int]]) -> dict[str, tuple]:
    """stage -> (largest worker's peak, driver's peak) in bytes over the polls inside its spans.
    A worker kept from an earlier stage counts with what it still holds."""
    peaks: dict[str, tuple[int, int]] = {}
    for name, start, end in spans:
        inside = [(child, driver) for at, driver, child in timeline if start <= at <= end]
        worker, driver = peaks.get(name, (0, 0))
        peaks[name] = (max([worker] + [c for c, _ in inside]), max([driver] + [d for _, d in inside]))
    return peaks


def time_metadata_run(config: PipelineConfig, workers: int) -> tuple[ScaleResult, dict[str, tuple]]:
    """Run the metadata-only pipeline from scratch on Ray; the figures, and per stage the peaks."""
    shutil.rmtree(config.run_dir, ignore_errors=True)
    phases = PhaseTimes()
    with MemorySampler() as memory:
        started = time.perf_counter()
        summary = run_pipeline(config, executor="ray", workers=workers, progress=phases)
        seconds = time.perf_counter() - started
    stage_seconds = {stage["stage_id"]: stage["wall_seconds"] for stage in summary["stages"]}
    stage_seconds["check"] = sum(end - start for name, start, end in phases.spans if name == "check")
    result = ScaleResult(summary["ingested"], summary["curated"], workers, seconds, stage_seconds,
                         memory.driver_peak / 2**20, memory.child_peak / 2**20, memory.tree_peak / 2**20)
    return result, stage_peaks(phases.spans, memory.timeline)


def time_metadata_run_in_process(pool: Path, run_dir: Path, metadata: Path, n: int,
                                 workers: int) -> tuple[ScaleResult, dict[str, tuple]]:
    """time_metadata_run in a fresh Python process, so that the driver's figures are the run's
    alone (not those of the process that built the pool)."""
    command = [sys.executable, "-m", "curate.bench.scale", str(pool), str(run_dir), str(metadata), str(n), str(workers)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.splitlines()[-1])
    return ScaleResult(**result["result"]), {k: tuple(v) for k, v in result["peaks"].items()}


if __name__ == "__main__":
    pool_arg, run_arg, metadata_arg, n_arg, workers_arg = sys.argv[1:6]
    figures, peaks = time_metadata_run(metadata_pipeline(Path(pool_arg), Path(run_arg), Path(metadata_arg),
                                                         int(n_arg)), int(workers_arg))
    print(json.dumps({"result": asdict(figures), "peaks": peaks}))
