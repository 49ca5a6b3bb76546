"""The report's plots: matplotlib figures drawn off-screen, embedded as PNG data: URIs."""

from __future__ import annotations

import io

import numpy as np

from curate.report.metaclip import EntryDistribution
from curate.report.render import data_uri
from curate.report.scores import Histogram

KEPT_COLOUR, DROPPED_COLOUR, CUT_COLOUR = "#2e7d32", "#b0bec5", "#c62828"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_uri(figure) -> str:
    """A figure as a PNG data: URI (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return data_uri(buffer.getvalue(), "image/png")


def histogram_plot(histogram: Histogram) -> str:
    """Curated and dropped samples stacked per bin, each cut a dashed line with its name."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.6, 2.5))
    edges = histogram.edges
    widths, lefts = np.diff(edges), edges[:-1]
    axes.bar(lefts, histogram.curated, widths, align="edge", color=KEPT_COLOUR, label="curated")
    axes.bar(lefts, histogram.dropped, widths, bottom=histogram.curated, align="edge", color=DROPPED_COLOUR,
             label="dropped")
    for cut in histogram.thresholds:
        axes.axvline(cut.value, color=CUT_COLOUR, linestyle="--", linewidth=1.2)
        axes.annotate(f"{cut.label}: keep {cut.keeps} {cut.value:g}", (cut.value, 0.97), xycoords=("data", "axes fraction"),
                      fontsize=7, color=CUT_COLOUR, ha="left", va="top", rotation=90)
    axes.set_title(histogram.column, fontsize=9)
    axes.set_ylabel("samples", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, frameon=False)
    return png_uri(figure)


def entry_curve_plot(distribution: EntryDistribution) -> str:
    """Entry counts by rank, before and after balancing, on log axes, with t."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.2, 3.0))
    ranks = np.arange(1, len(distribution.before) + 1)
    axes.loglog(ranks, np.maximum(distribution.before, 0.8), color=DROPPED_COLOUR, linewidth=2, label="before")
    axes.loglog(ranks, np.maximum(np.sort(distribution.after)[::-1], 0.8), color=KEPT_COLOUR, linewidth=2,
                label="after (sorted again)")
    axes.axhline(distribution.t, color=CUT_COLOUR, linestyle="--", linewidth=1.2, label=f"t = {distribution.t:g}")
    axes.set_xlabel("entry rank", fontsize=8)
    axes.set_ylabel("captions matching the entry", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, frameon=False)
    return png_uri(figure)
