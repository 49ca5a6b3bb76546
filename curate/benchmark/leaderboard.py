"""The leaderboard: per strategy its subset size, per-task results and the average over the
suite, each as mean and spread (sample standard deviation) over seeds, and whether the best
curated strategy beats the baseline by more than 3 standard deviations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from curate.run import write_atomic

MARGIN_SIGMAS = 3.0


def spread(values: list[float]) -> dict:
    """mean, std (ddof 1; NaN for one value) and the values."""
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if len(array) > 1 else float("nan")
    return {"mean": float(array.mean()) if len(array) else float("nan"), "std": std, "values": list(map(float, array))}


def strategy_row(name: str, subset: dict, results: list[dict]) -> dict:
    """One leaderboard row from a strategy's curation summary and its per-seed evaluation results."""
    tasks = [t["task"] for t in results[0]["tasks"]] if results else []
    per_task = {key: spread([next(t["main"] for t in r["tasks"] if t["task"] == key) for r in results])
                for key in tasks}
    return {"strategy": name, "subset_size": subset["curated"], "pool_size": subset["ingested"],
            "seeds": [r["seed"] for r in results], "tasks": per_task,
            "average": spread([r["average"] for r in results])}


def sigmas_apart(better: dict, base: dict) -> tuple[float, float, float]:
    """(gap of the means, sigma, gap in sigmas); sigma is the larger of the two spreads over
    seeds, NaN with one seed (no spread, no claim)."""
    gap = better["mean"] - base["mean"]
    sigma = max(better["std"], base["std"])
    if math.isnan(sigma):
        return gap, sigma, float("nan")
    return gap, sigma, gap / sigma if sigma > 0 else (math.inf if gap > 0 else -math.inf if gap < 0 else 0.0)


def verdict(rows: list[dict], baseline: str) -> dict:
    """How the best strategy other than the baseline compares with it on the average, and on
    each task, in units of the larger of the two spreads over seeds."""
    base = next(r for r in rows if r["strategy"] == baseline)
    others = [r for r in rows if r["strategy"] != baseline and not math.isnan(r["average"]["mean"])]
    if not others:
        return {"baseline": baseline, "best": None, "text": "no curated strategy has results", "per_task": {}}
    best = max(others, key=lambda r: r["average"]["mean"])
    gap, sigma, sigmas = sigmas_apart(best["average"], base["average"])
    beats = not math.isnan(sigmas) and sigmas > MARGIN_SIGMAS
    text = (f"{best['strategy']!r} {'beats' if beats else 'does NOT beat'} {baseline!r} by more than "
            f"{MARGIN_SIGMAS:g} standard deviations: average {best['average']['mean']:.4f} vs "
            f"{base['average']['mean']:.4f}, gap {gap:+.4f} = {sigmas:.1f} sigma (sigma = {sigma:.4f}, the larger "
            f"spread over {len(best['seeds'])} seeds)")
    per_task = {key: sigmas_apart(best["tasks"][key], base["tasks"][key])[2]
                for key in best["tasks"] if key in base["tasks"]}
    return {"baseline": baseline, "best": best["strategy"], "gap": gap, "sigma": sigma, "sigmas": sigmas,
            "beats_by_3_sigma": beats, "text": text, "per_task": per_task}


def _cell(value: dict) -> str:
    if math.isnan(value["mean"]):
        return "n/a"
    return f"{value['mean']:.4f}" if math.isnan(value["std"]) else f"{value['mean']:.4f} ± {value['std']:.4f}"


def markdown(board: dict) -> str:
    """The leaderboard as Markdown: the table, the verdict, and the scorers' ground-truth figures."""
    rows, names = board["rows"], board["task_names"]
    head = ["rank", "strategy", "subset size", *names.values(), "average"]
    lines = [f"# Leaderboard: {board['name']}", "", board["setting"], "",
             "| " + " | ".join(head) + " |", "| " + " | ".join(["---:", "---", "---:"] + ["---:"] * (len(names) + 1)) + " |"]
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), row["strategy"], f"{row['subset_size']:,} of {row['pool_size']:,}",
                 *(_cell(row["tasks"][key]) if key in row["tasks"] else "n/a" for key in names), _cell(row["average"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**{board['verdict']['text']}.**", ""]
    per_task = board["verdict"].get("per_task", {})
    if per_task:
        lines += ["Per task, the same comparison in standard deviations: " + ", ".join(
            f"{names.get(key, key)} {value:+.1f}" for key, value in per_task.items()) + ".", ""]
    if board.get("ground_truth"):
        from curate.benchmark.truth import markdown as truth_markdown

        lines.append(truth_markdown(board["ground_truth"]))
    return "\n".join(lines) + "\n"


def plot(board: dict, path: Path) -> Path:
    """A bar chart of each strategy's average with its spread over seeds, subset sizes beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = board["rows"][::-1]
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    means = [r["average"]["mean"] for r in rows]
    errors = [0 if math.isnan(r["average"]["std"]) else r["average"]["std"] for r in rows]
    axis.barh([r["strategy"] for r in rows], means, xerr=errors, color="#4c78a8", capsize=3)
    for index, row in enumerate(rows):
        axis.text(means[index] + errors[index], index, f"  {row['subset_size']:,} samples", va="center", fontsize=8)
    axis.set_xlabel(f"average over the suite (mean ± std over {len(board['seeds'])} seeds)")
    axis.set_title(board["name"])
    axis.set_xlim(0, max(means + [0.01]) * 1.35)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write(board: dict, out: Path) -> dict[str, Path]:
    """leaderboard.json, leaderboard.md and leaderboard.png in `out`."""
    paths = {"json": out / "leaderboard.json", "markdown": out / "leaderboard.md", "plot": out / "leaderboard.png"}
    write_atomic(paths["json"], (json.dumps(_finite(board), indent=2) + "\n").encode())
    write_atomic(paths["markdown"], markdown(board).encode())
    plot(board, paths["plot"])
    return paths


def _finite(value):
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
