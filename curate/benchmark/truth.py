"""Scoring the scorers where the pool says which samples are noisy: each score's ROC AUC at
ranking clean samples above noisy ones, with precision and recall at its best threshold, and
each strategy's removals as a detector of noise."""

from __future__ import annotations

import glob
import math
from pathlib import Path

import numpy as np
import polars as pl

from curate.benchmark.config import GroundTruth
from curate.errors import ConfigError
from curate.eval.metrics import roc_auc
from curate.scan import scan


def truth_table(truth: GroundTruth) -> pl.DataFrame:
    """key -> noisy, from the ground-truth Parquet files."""
    files = sorted(f for pattern in truth.files for f in glob.glob(pattern))
    if not files:
        raise ConfigError(f"ground_truth.files match no file: {', '.join(truth.files)}")
    frame = pl.scan_parquet(files).select(pl.col(truth.key).alias("key"), pl.col(truth.noisy).alias("noisy"))
    return frame.collect()


def best_threshold(clean_scores: np.ndarray, noisy: np.ndarray) -> dict:
    """Flagging as noisy every sample scored below a threshold: the threshold with the best F1,
    and the precision and recall there."""
    order = np.argsort(clean_scores, kind="stable")
    flagged_noisy = np.cumsum(noisy[order])  # noisy among the k+1 lowest
    flagged = np.arange(1, len(order) + 1)
    precision, recall = flagged_noisy / flagged, flagged_noisy / max(noisy.sum(), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = int(np.argmax(f1))
    return {"threshold": float(clean_scores[order][best]), "precision": float(precision[best]),
            "recall": float(recall[best]), "f1": float(f1[best])}


def rate_scores(pool_run: Path, truth: GroundTruth, table: pl.DataFrame) -> list[dict]:
    """Per score column: ROC AUC (clean above noisy) and the best-F1 operating point."""
    lazy = scan(pool_run)
    names = lazy.collect_schema().names()
    unknown = [c for c in truth.scores if c not in names]
    if unknown:
        raise ConfigError(f"ground_truth.scores: {unknown[0]!r} is no column of the shared scores")
    frame = lazy.select(["key", *truth.scores]).collect().join(table, on="key", how="inner")
    rated = []
    for column, direction in truth.scores.items():
        scored = frame.filter(pl.col(column).is_not_null() & pl.col(column).is_not_nan())
        values = scored[column].to_numpy().astype(float)
        clean_scores = values if direction == "higher_is_clean" else -values
        noisy = scored["noisy"].to_numpy().astype(bool)
        rated.append({"score": column, "direction": direction, "samples": len(scored),
                      "roc_auc": roc_auc(clean_scores, ~noisy), **best_threshold(clean_scores, noisy)})
    return rated


def rate_removals(run_dir: Path, name: str, table: pl.DataFrame) -> dict:
    """A strategy's removals (everything its run dropped) as a noise detector."""
    frame = scan(run_dir).select(["key", "kept"]).collect().join(table, on="key", how="inner")
    removed, noisy = ~frame["kept"].to_numpy(), frame["noisy"].to_numpy().astype(bool)
    caught = int((removed & noisy).sum())
    return {"strategy": name, "removed": int(removed.sum()), "noisy": int(noisy.sum()),
            "precision": caught / removed.sum() if removed.sum() else float("nan"),
            "recall": caught / noisy.sum() if noisy.sum() else float("nan"),
            "noisy_left": float((noisy & ~removed).sum() / max((~removed).sum(), 1))}


def markdown(truth: dict) -> str:
    """The two ground-truth tables."""
    lines = ["## Scorers against the ground truth", "",
             f"{truth['noisy']:,} of {truth['samples']:,} pool samples are noisy.", "",
             "| score | ROC AUC | best-F1 threshold | precision | recall |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in truth["scores"]:
        lines.append(f"| {row['score']} ({row['direction'].replace('_', ' ')}) | {row['roc_auc']:.4f} | "
                     f"{row['threshold']:.4f} | {row['precision']:.4f} | {row['recall']:.4f} |")
    lines += ["", "| strategy | removed | precision (removed that are noisy) | recall (noisy removed) | "
              "noisy share of the subset |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in truth["strategies"]:
        lines.append(f"| {row['strategy']} | {row['removed']:,} | {_fraction(row['precision'])} | "
                     f"{_fraction(row['recall'])} | {_fraction(row['noisy_left'])} |")
    return "\n".join(lines) + "\n"


def _fraction(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"
