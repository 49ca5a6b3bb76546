"""curate status RUN: per stage, shards done of total and rows kept/dropped so far."""

from __future__ import annotations

from pathlib import Path

from curate.run import RunDir
from curate.scan import run_stages


def run_status(run_dir: str | Path) -> list[dict]:
    """One dict per stage: id, shards_done, shards_total, rows, alive_in, dropped."""
    run = RunDir(run_dir)
    rows = []
    for stage_id, _ in run_stages(run_dir):
        record = run.stage_record(stage_id) or {}
        units = record.get("shards", [])
        markers = [m for m in (run.read_marker(stage_id, u) for u in units) if m is not None
                   and m.get("config_hash") == record.get("config_hash")]
        rows.append({
            "stage": stage_id,
            "shards_done": len(markers),
            "shards_total": len(units),
            "rows": sum(m.get("rows", 0) for m in markers),
            "alive_in": sum(m.get("alive_in", m.get("rows", 0)) for m in markers),
            "dropped": sum(sum(m.get("drop_counts", {}).values()) for m in markers),
        })
    return rows
