"""curate status RUN: per stage, shards done of total and rows kept/dropped so far."""

from __future__ import annotations

import fcntl
from pathlib import Path

from curate.committed import committed_markers, is_finished
from curate.run import LOCK, RunDir


def run_state(run_dir: str | Path) -> str:
    """"running" while a curate process holds the run's lock, "finished" once a run passed its
    final check, else "interrupted" (rerun the same command to resume)."""
    lock = Path(run_dir) / LOCK
    if lock.exists():
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return "running"
            fcntl.flock(handle, fcntl.LOCK_UN)
    return "finished" if is_finished(run_dir) else "interrupted"


def committed_shards(run_dir: str | Path) -> int:
    """Shards committed by every stage of a run, all stages together."""
    return sum(len(done) for done in committed_markers(run_dir).values())


def run_status(run_dir: str | Path) -> list[dict]:
    """One dict per stage: id, reached (whether the stage has begun), shards_done, shards_total,
    rows, alive_in, dropped.

    Only shards whose markers are still valid count as done.
    """
    run = RunDir(run_dir)
    rows = []
    for stage_id, done in committed_markers(run_dir).items():
        markers = list(done.values())
        rows.append({
            "stage": stage_id,
            "reached": run.stage_record(stage_id) is not None,
            "shards_done": len(markers),
            "shards_total": len((run.stage_record(stage_id) or {}).get("shards", [])),
            "rows": sum(m.get("rows", 0) for m in markers),
            "alive_in": sum(m.get("alive_in", m.get("rows", 0)) for m in markers),
            "dropped": sum(sum(m.get("drop_counts", {}).values()) for m in markers),
        })
    return rows
