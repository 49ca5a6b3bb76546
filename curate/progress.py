"""Progress per stage (shards done/total, samples/s) and the closing summary table."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
from rich.table import Table


class _NullBar:
    def advance(self, marker: dict) -> None:
        """Ignore progress."""


class NullProgress:
    """Shows nothing (library use, tests)."""

    @contextmanager
    def stage(self, label: str, total: int, done: int = 0) -> Iterator[_NullBar]:
        """A bar that shows nothing."""
        yield _NullBar()


class Progress(NullProgress):
    """rich progress bars, one per stage and phase."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, label: str, total: int, done: int = 0) -> Iterator["_RichBar"]:
        """A bar for one stage: shards done of total, and samples per second."""
        columns = (TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("shards"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
        with RichProgress(*columns, console=self.console, transient=False) as bars:
            task = bars.add_task(label, total=total, completed=done, rate="")
            yield _RichBar(bars, task)


class _RichBar:
    def __init__(self, bars: RichProgress, task) -> None:
        self.bars, self.task = bars, task
        self.rows, self.started = 0, time.perf_counter()

    def advance(self, marker: dict) -> None:
        """Count one finished shard and its rows."""
        self.rows += marker.get("rows", 0)
        rate = self.rows / max(time.perf_counter() - self.started, 1e-9)
        self.bars.update(self.task, advance=1, rate=f"{rate:,.0f} samples/s")


def summary_table(summary: dict) -> Table:
    """Per stage: rows in, kept, dropped by reason, time."""
    table = Table(title=f"run {summary['run_dir']}")
    for column in ("stage", "shards", "rows in", "kept", "dropped (by reason)", "time"):
        left = column in ("stage", "dropped (by reason)")
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "stage")
    for stage in summary["stages"]:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in stage["drop_counts"].items())
        shards = f"{stage['shards']}" + (f" ({stage['reused']} reused)" if stage["reused"] else "")
        table.add_row(stage["stage_id"], shards, f"{stage['alive_in']:,}", f"{stage['kept']:,}",
                      reasons or "-", f"{stage['wall_seconds']:.1f}s")
    return table
