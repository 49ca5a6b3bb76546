"""`curate bench download`: a generated pool served from 127.0.0.1, downloaded by curate's URL
stage and by the plain `img2dataset` command on the same URL list, side by side."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


SHARD_SIZE = 1000


@dataclass
class DownloadResult:
    """One timed download of the whole URL list."""

    tool: str
    processes: int
    downloaded: int
    seconds: float

    @property
    def samples_per_second(self) -> float:
        """Downloaded samples per wall-clock second."""
        return self.downloaded / self.seconds


def write_url_list(pool: Path, base_url: str, out: Path) -> int:
    """The URL list of a folder-format synthetic pool served at base_url; returns its length."""
    shards = json.loads((pool / "_pool.json").read_text())["shards"]
    parts = []
    for shard in shards:
        truth = pq.read_table(pool / f"{shard}.parquet", columns=["key", "caption"])
        urls = [f"{base_url}/{shard}/{key}.jpg" for key in truth.column("key").to_pylist()]
        parts.append(truth.append_column("url", pa.array(urls)))
    table = pa.concat_tables(parts)
    pq.write_table(table, out)
    return table.num_rows


def time_curate(url_list: Path, run_dir: Path, executor: str, workers: int, threads: int) -> DownloadResult:
    """`curate run` of ingest_urls over the list (bytes kept as downloaded, header check only),
    timed as a fresh process, like the img2dataset command."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    pipeline = {"name": "bench-download", "run_dir": str(run_dir), "stages": [{
        "stage": "ingest_urls", "params": {
            "inputs": str(url_list), "urls_per_shard": SHARD_SIZE, "thread_count": threads,
            "check_images": "header", "timeout": 30}}]}
    (run_dir / "bench.yaml").write_text(yaml.safe_dump(pipeline))
    command = [sys.executable, "-m", "curate", "run", str(run_dir / "bench.yaml"), "--quiet",
               "--executor", executor, "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    curated = json.loads((run_dir / "summary.json").read_text())["curated"]
    return DownloadResult(f"curate ({executor})", 1 if executor == "local" else workers, curated, seconds)


def time_img2dataset(url_list: Path, out: Path, processes: int, threads: int) -> DownloadResult:
    """The plain img2dataset command on the same list, writing WebDataset shards untouched."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(Path(sys.executable).parent / "img2dataset"), "--url_list", str(url_list),
               "--input_format", "parquet", "--url_col", "url", "--caption_col", "caption",
               "--output_format", "webdataset", "--output_folder", str(out),
               "--processes_count", str(processes), "--thread_count", str(threads),
               "--number_sample_per_shard", str(SHARD_SIZE), "--disable_all_reencoding", "True",
               "--timeout", "30", "--enable_wandb", "False"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={"NO_ALBUMENTATIONS_UPDATE": "1",
                                                                   "PATH": "/usr/bin:/bin"})
    seconds = time.perf_counter() - started
    downloaded = sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))
    return DownloadResult("img2dataset", processes, downloaded, seconds)
