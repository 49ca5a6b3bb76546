"""A benchmark's report: the leaderboard with its verdict and plot, the ground truth, and every
strategy's funnel and the pool's scores, from a `curate benchmark` folder."""

from __future__ import annotations

import json
from pathlib import Path

from curate.report.facts import load_run
from curate.report.funnel import funnel
from curate.report.plots import histogram_plot
from curate.report.render import data_uri
from curate.report.scores import histograms
from curate.versions import package_versions


def benchmark_context(root: Path) -> dict:
    """Everything the benchmark template shows."""
    board = json.loads((root / "leaderboard.json").read_text())
    pool = load_run(root / "pool") if (root / "pool" / "summary.json").is_file() else None
    return {
        "title": f"curate benchmark report: {board['name']}",
        "root": str(root.resolve()),
        "board": board,
        "tasks": list(board.get("task_names", {}).items()),
        "plot": _png_uri(root / "leaderboard.png"),
        "strategies": _strategy_funnels(root / "strategies"),
        "histograms": [{"h": h, "plot": histogram_plot(h)} for h in histograms(pool)] if pool else [],
        "versions": (pool.summary.get("versions") if pool else None) or package_versions(),
    }


def _strategy_funnels(folder: Path) -> list[dict]:
    """Per strategy's curation run (OUT/strategies/<strategy>/curation): its name and funnel."""
    found = []
    for run in sorted(folder.glob("*/curation/summary.json")):
        facts = load_run(run.parent)
        found.append({"name": facts.summary.get("pipeline", run.parent.name), "dir": str(run.parent),
                      "steps": funnel(facts)})
    return found


def _png_uri(path: Path) -> str | None:
    return data_uri(path.read_bytes(), "image/png") if path.is_file() else None
