"""Histograms of every score a run computed, split into curated and dropped samples, with the
cuts the stages made on them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curate.report.facts import RunFacts
from curate.stage import SinkStage, SourceStage, Threshold

BINS = 40
TAIL = 0.001  # the range shown leaves out this share at each end; those samples land in the end bins


@dataclass
class Histogram:
    """One score's distribution over the samples that have it."""

    column: str
    stage_id: str
    edges: np.ndarray
    curated: np.ndarray
    dropped: np.ndarray
    missing: int
    thresholds: list[Threshold] = field(default_factory=list)
    quantiles: dict[str, float] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        """Samples with a value."""
        return int(self.curated.sum() + self.dropped.sum())


def score_columns(facts: RunFacts, schema: pl.Schema) -> dict[str, str]:
    """Numeric columns a scoring or selecting stage wrote -> the stage that wrote them."""
    owners: dict[str, str] = {}
    for stage in facts.stages:
        if isinstance(stage, (SourceStage, SinkStage)):
            continue
        for name in stage.schema().names:
            if name in schema and schema[name].is_numeric():
                owners[name] = stage.id
    return owners


def histograms(facts: RunFacts) -> list[Histogram]:
    """A histogram per score column, in pipeline order."""
    frame = facts.samples()
    owners = score_columns(facts, frame.collect_schema())
    if not owners:
        return []
    cuts = _thresholds_by_column(facts)
    values = frame.select(*owners, "kept").collect()
    kept = values["kept"].to_numpy()
    return [_histogram(column, stage_id, values[column], kept, cuts.get(column, []))
            for column, stage_id in owners.items()]


def _thresholds_by_column(facts: RunFacts) -> dict[str, list[Threshold]]:
    cuts: dict[str, list[Threshold]] = {}
    for stage in facts.stages:
        for cut in stage.thresholds(facts.details(stage.id)):
            if np.isfinite(cut.value):  # a cut at infinity (max_aspect_ratio: .inf) cuts nothing
                cuts.setdefault(cut.column, []).append(cut)
    return cuts


def _histogram(column: str, stage_id: str, series: pl.Series, kept: np.ndarray,
               thresholds: list[Threshold]) -> Histogram:
    values = series.cast(pl.Float64).to_numpy()  # null and NaN both become NaN
    present = ~np.isnan(values)
    values, kept = values[present], kept[present]
    edges = _edges(values, series.dtype.is_integer(), [t.value for t in thresholds])
    clipped = np.clip(values, edges[0], edges[-1])
    curated, _ = np.histogram(clipped[kept], edges)
    dropped, _ = np.histogram(clipped[~kept], edges)
    quantiles = {}
    if len(values):
        quantiles = dict(zip(("min", "median", "max"), np.quantile(values, [0, 0.5, 1]).tolist()))
    return Histogram(column, stage_id, edges, curated, dropped, int((~present).sum()), thresholds, quantiles)


def _edges(values: np.ndarray, integer: bool, cuts: list[float]) -> np.ndarray:
    """Bin edges over the bulk of the values, widened to show every cut; one bin per integer
    when the integers span few values."""
    if len(values):
        low, high = np.quantile(values, [TAIL, 1 - TAIL])
    else:
        low, high = 0.0, 1.0
    low, high = min([low, *cuts]), max([high, *cuts])
    if integer and high - low <= BINS:
        return np.arange(np.floor(low), np.floor(high) + 2) - 0.5
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, BINS + 1)
