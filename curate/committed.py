"""What a run directory holds that can be trusted: the stages last run and, per stage, the
shards whose commit markers are still valid."""

from __future__ import annotations

from pathlib import Path

import yaml

from curate.errors import InputError
from curate.run import RunDir, vouches
from curate.stage import Stage, stage_class


def run_stages(run_dir: str | Path) -> list[tuple[str, type[Stage]]]:
    """(stage id, stage class) of the pipeline last run in run_dir, in order."""
    path = Path(run_dir) / "pipeline.yaml"
    if not path.exists():
        raise InputError(f"{run_dir} is not a run directory (no pipeline.yaml); run `curate run` first")
    entries = yaml.safe_load(path.read_text())["stages"]
    return [(entry.get("id") or entry["stage"], stage_class(entry["stage"])) for entry in entries]


def committed_markers(run_dir: str | Path) -> dict[str, dict[str, dict]]:
    """stage id -> {unit: marker} for units whose marker matches the stage's current config,
    whose files exist, and whose upstream outputs are still the ones it was computed from."""
    run = RunDir(run_dir)
    valid: dict[str, dict[str, dict]] = {}
    for stage_id, _ in run_stages(run_dir):
        record = run.stage_record(stage_id) or {}
        valid[stage_id] = {}
        for unit in record.get("shards", []):
            marker = run.read_marker(stage_id, unit)
            if vouches(run, marker, record["config_hash"]) \
                    and all(valid.get(up, {}).get(unit, {}).get("output_sha256") == digest
                            for up, digest in marker.get("upstream", [])):
                valid[stage_id][unit] = marker
    return valid


def is_finished(run_dir: str | Path) -> bool:
    """A run is finished when its last invocation got through the final invariant check."""
    return (Path(run_dir) / "summary.json").is_file()
