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


# sizes for a plot read at a glance: about 820 x 430 px, text of at least 15 px (11 pt at 100 dpi)
DPI, FIGSIZE = 100, (8.2, 4.3)
LABEL_PT, TICK_PT = 12, 11
SWAMPED = 5  # dropped samples over this many times the curated ones: counts on a log scale


def png_uri(figure) -> str:
    """A figure as a PNG data: URI (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return data_uri(buffer.getvalue(), "image/png")


def histogram_plot(histogram: Histogram) -> str:
    """`histogram_figure` as a PNG data: URI."""
    return png_uri(histogram_figure(histogram))


def log_counts(histogram: Histogram) -> bool:
    """Whether the dropped samples swamp the curated ones, so that counts need a log scale."""
    return bool(np.sum(histogram.dropped) > SWAMPED * max(np.sum(histogram.curated), 1))


def histogram_figure(histogram: Histogram):
    """Curated and dropped samples stacked per bin, each cut a dashed line named in the legend with
    its value; counts on a log scale where the dropped samples swamp the curated ones."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=FIGSIZE)
    edges = histogram.edges
    widths, lefts = np.diff(edges), edges[:-1]
    axes.bar(lefts, histogram.curated, widths, align="edge", color=KEPT_COLOUR, label="curated")
    axes.bar(lefts, histogram.dropped, widths, bottom=histogram.curated, align="edge", color=DROPPED_COLOUR,
             label="dropped")
    for cut in histogram.thresholds:
        axes.axvline(cut.value, color=CUT_COLOUR, linestyle="--", linewidth=1.5,
                     label=f"{cut.label}: keeps {cut.keeps} {cut.value:g}")
    swamped = log_counts(histogram)
    if swamped:
        axes.set_yscale("symlog", linthresh=1)
    axes.set_xlabel(histogram.column, fontsize=LABEL_PT)
    axes.set_ylabel("samples (log scale)" if swamped else "samples", fontsize=LABEL_PT)
    axes.tick_params(labelsize=TICK_PT)
    axes.legend(fontsize=TICK_PT, frameon=False, loc="best")
    return figure


def entry_curve_plot(distribution: EntryDistribution) -> str:
    """Entry counts by rank, before and after balancing, on log axes, with t."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=FIGSIZE)
    ranks = np.arange(1, len(distribution.before) + 1)
    axes.loglog(ranks, np.maximum(distribution.before, 0.8), color=DROPPED_COLOUR, linewidth=2, label="before")
    axes.loglog(ranks, np.maximum(np.sort(distribution.after)[::-1], 0.8), color=KEPT_COLOUR, linewidth=2,
                label="after (sorted again)")
    axes.axhline(distribution.t, color=CUT_COLOUR, linestyle="--", linewidth=1.5, label=f"t = {distribution.t:g}")
    axes.set_xlabel("entry rank", fontsize=LABEL_PT)
    axes.set_ylabel("captions matching the entry", fontsize=LABEL_PT)
    axes.tick_params(labelsize=TICK_PT)
    axes.legend(fontsize=TICK_PT, frameon=False)
    return png_uri(figure)
