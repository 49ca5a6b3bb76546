"""curate status RUN: per stage, shards done of total and rows kept/dropped so far."""

from __future__ import annotations

from pathlib import Path

from curate.committed import committed_markers
from curate.run import RunDir


def run_status(run_dir: str | Path) -> list[dict]:
    """One dict per stage: id, shards_done, shards_total, rows, alive_in, dropped.

    Only shards whose markers are still valid count as done.
    """
    run = RunDir(run_dir)
    rows = []
    for stage_id, done in committed_markers(run_dir).items():
        markers = list(done.values())
        rows.append({
            "stage": stage_id,
            "shards_done": len(markers),
            "shards_total": len((run.stage_record(stage_id) or {}).get("shards", [])),
            "rows": sum(m.get("rows", 0) for m in markers),
            "alive_in": sum(m.get("alive_in", m.get("rows", 0)) for m in markers),
            "dropped": sum(sum(m.get("drop_counts", {}).values()) for m in markers),
        })
    return rows
