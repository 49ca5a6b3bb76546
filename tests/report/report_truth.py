"""What the report must show, computed straight from a run's files."""

import json

import polars as pl


def expected_funnel(run) -> list[tuple[str, int, int]]:
    """(stage, alive in, kept) computed straight from the Parquet: ingest rows, dropped.parquet."""
    alive = pl.scan_parquet(str(run / "ingest_webdataset" / "*.parquet")).select(pl.len()).collect().item()
    dropped = dict(pl.read_parquet(run / "dropped.parquet").group_by("dropped_by").len().iter_rows())
    rows = []
    for entry in json.loads((run / "summary.json").read_text())["stages"]:
        kept = alive - dropped.get(entry["stage_id"], 0)
        rows.append((entry["stage_id"], alive, kept))
        alive = kept
    return rows
