"""Run and benchmark reports (one self-contained HTML file each) and dataset cards (Markdown)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.errors import InputError
from curate.run import write_atomic

REPORT = "report.html"
THUMBNAILS = 12  # per group: kept, and each drop reason


@dataclass(frozen=True)
class Written:
    """The files a report wrote."""

    report: Path
    card: Path | None = None


def write_run_report(run_dir: str | Path, out: Path | None = None, eval_results: list[Path] = (),
                     thumbnails: int = THUMBNAILS) -> Written:
    """RUN/report.html (or `out`) and the dataset card beside the curated shards."""
    from curate.report.card import card_path, dataset_card
    from curate.report.facts import load_run
    from curate.report.render import render
    from curate.report.run_report import run_context

    facts = load_run(run_dir)
    context = run_context(facts, list(eval_results), thumbnails)
    card = card_path(facts)
    write_atomic(card, dataset_card(facts, context["steps"]).encode())
    report = Path(out) if out else facts.root / REPORT
    write_atomic(report, render("run.html.j2", context | {"card": str(card)}).encode())
    return Written(report, card)


def write_benchmark_report(bench_out: str | Path, out: Path | None = None) -> Written:
    """OUT/report.html of a `curate benchmark` folder: the leaderboard and every strategy's funnel."""
    from curate.report.benchmark import benchmark_context
    from curate.report.render import render

    root = Path(bench_out)
    report = Path(out) if out else root / REPORT
    write_atomic(report, render("benchmark.html.j2", benchmark_context(root)).encode())
    return Written(report)


def write_report(path: str | Path, out: Path | None = None, eval_results: list[Path] = (),
                 thumbnails: int = THUMBNAILS) -> Written:
    """The report of a run directory or of a benchmark folder, whichever `path` is."""
    path = Path(path)
    if (path / "leaderboard.json").is_file():
        if eval_results:
            raise InputError("--eval adds evaluation tables to a run's report; a benchmark report has its leaderboard")
        return write_benchmark_report(path, out)
    if not path.is_dir():
        raise InputError(f"{path} is not a folder: give a run directory (curate run) or a benchmark folder "
                         f"(curate benchmark)")
    return write_run_report(path, out, eval_results, thumbnails)

