"""`curate bench report`: the time, peak memory and size of the report of a large run: a
generated pool goes through caption scores, filters, exact deduplication, a top fraction and
MetaCLIP balancing to export, then the report is built (and only that is timed)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from curate.bench.memory import MemorySampler
from curate.config import PipelineConfig


@dataclass
class ReportResult:
    """One timed report."""

    samples: int
    seconds: float
    peak_mib: float
    report_bytes: int
    card_bytes: int


def report_pipeline(pool: Path, run_dir: Path, metadata: Path, samples_per_shard: int) -> PipelineConfig:
    """Every kind of section the report has, at the cost of caption work only (no model)."""
    return PipelineConfig(
        name="bench-report",
        run_dir=run_dir,
        stages=[
            {"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar"), "check_images": "header"}},
            {"stage": "caption_stats"},
            {"stage": "caption_junk"},
            {"stage": "select", "params": {"filters": {"short_caption": "caption_words >= 3",
                                                       "mostly_not_letters": "caption_alpha_fraction >= 0.6"}}},
            {"stage": "dedup_exact", "params": {"keep_by": "caption_words"}},
            {"stage": "select_top_fraction", "params": {"column": "caption_unique_word_fraction", "fraction": 0.8}},
            {"stage": "metaclip_match", "params": {"metadata": str(metadata)}},
            {"stage": "metaclip_balance", "params": {"tail_entry_fraction": 0.9, "metadata": str(metadata)}},
            {"stage": "export", "params": {"samples_per_shard": samples_per_shard}},
        ],
    )


def time_report(run_dir: Path) -> ReportResult:
    """Build the run's report once and measure it."""
    from curate.report import write_run_report

    with MemorySampler() as memory:
        started = time.perf_counter()
        written = write_run_report(run_dir)
        seconds = time.perf_counter() - started
    samples = json.loads((Path(run_dir) / "summary.json").read_text())["ingested"]
    return ReportResult(samples, seconds, memory.driver_peak / 2**20, written.report.stat().st_size,
                        written.card.stat().st_size)
