"""The run directory: atomic writes, commit markers, fingerprints and resume decisions.

Layout of a run directory RUN:

    RUN/pipeline.yaml                 the pipeline as last run
    RUN/<stage>/_stage.json           the stage's config hash and shard list
    RUN/<stage>/<shard>.parquet       the stage's output for one input shard, keyed by uid
    RUN/<stage>/_done/<shard>.json    commit marker, written last: rows, fingerprint, config hash
    RUN/<stage>/_collect/<shard>.*    a global stage's per-shard collect result and its marker
    RUN/<stage>/_bucket/<shard>.*     a partitioned stage's collected rows with their buckets
    RUN/<stage>/_reduce/part-*.json   a partitioned stage's marker per partition (files in report/)
    RUN/dropped.parquet, RUN/summary.json
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_ROW_GROUP = 2048
_UNCOMPRESSED = {"image"}
_DATA_SUFFIXES = (".parquet", ".tar", ".npy")  # what output_digests compares, with sizes.json


def sha256_hex(data: bytes | str) -> str:
    """Hex sha256 of bytes or of a UTF-8 string."""
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, remembered while its size and mtime stay the same."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def output_digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every data file of a run (Parquet, tars, embeddings, the export's sizes.json),
    by relative path: what two runs that should agree are compared by."""
    return {str(path.relative_to(run_dir)): file_sha256(path) for path in sorted(run_dir.rglob("*"))
            if (path.suffix in _DATA_SUFFIXES or path.name == "sizes.json") and not path.name.startswith(".")}


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(value: Any) -> str:
    """A hash of a JSON-able value that does not depend on dict order."""
    return sha256_hex(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def parquet_bytes(table: pa.Table) -> bytes:
    """Serialise a table to Parquet deterministically: fixed row groups; binary columns (images,
    embeddings), which no codec shrinks, stored plain: neither compressed, nor dictionary-encoded,
    nor given statistics; uids, unique by construction, compressed but never dictionary-encoded."""
    plain = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
             or f.name in _UNCOMPRESSED]
    encoded = [name for name in table.column_names if name not in plain and name != "uid"]
    compression = {name: ("NONE" if name in plain else "ZSTD") for name in table.column_names}
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=PARQUET_ROW_GROUP, compression=compression,
                   use_dictionary=encoded, write_statistics=encoded)
    return buffer.getvalue()


def write_parquet_atomic(path: Path, table: pa.Table) -> str:
    """Write `table` to `path` atomically; return the sha256 of the bytes written."""
    data = parquet_bytes(table)
    write_atomic(path, data)
    return sha256_hex(data)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write a JSON document atomically (sorted keys, so reruns give identical bytes)."""
    write_atomic(path, (json.dumps(value, sort_keys=True, indent=1) + "\n").encode())


def read_json(path: Path) -> Any | None:
    """Read a JSON document, or None when it does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


LOCK = ".lock"  # held (flock) by the one curate process running in a run directory
# what a run writes at the root of its directory, besides a folder per stage and selections/
RUN_FILES = ("pipeline.yaml", "summary.json", "dropped.parquet", "report.html", "DATASET_CARD.md",
             ".helper-processes.json")


class RunDir:
    """Paths and commit protocol of one run directory."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def stage_dir(self, stage_id: str) -> Path:
        """The folder of one stage's outputs."""
        return self.root / stage_id

    def output_path(self, stage_id: str, shard: str) -> Path:
        """The Parquet output of a stage for one shard."""
        return self.stage_dir(stage_id) / f"{shard}.parquet"

    def marker_path(self, stage_id: str, shard: str, phase: str = "_done") -> Path:
        """The commit marker of a stage for one shard (phase: _done or _collect)."""
        return self.stage_dir(stage_id) / phase / f"{shard}.json"

    def collect_path(self, stage_id: str, shard: str) -> Path:
        """A global stage's per-shard collect result."""
        return self.phase_path(stage_id, "_collect", shard)

    def phase_path(self, stage_id: str, phase: str, unit: str) -> Path:
        """The Parquet file of one unit of a global stage's phase (_collect, _bucket)."""
        return self.stage_dir(stage_id) / phase / f"{unit}.parquet"

    def read_marker(self, stage_id: str, shard: str, phase: str = "_done") -> dict | None:
        """The commit marker, or None when the shard is not committed."""
        return read_json(self.marker_path(stage_id, shard, phase))

    def commit(self, stage_id: str, shard: str, marker: dict, phase: str = "_done") -> None:
        """Write the commit marker last, after the outputs it vouches for."""
        write_json_atomic(self.marker_path(stage_id, shard, phase), marker)

    def stage_record(self, stage_id: str) -> dict | None:
        """What _stage.json recorded for a stage (config hash, shards), or None."""
        return read_json(self.stage_dir(stage_id) / "_stage.json")

    def write_stage_record(self, stage_id: str, record: dict) -> None:
        """Record a stage's config hash and shard list."""
        write_json_atomic(self.stage_dir(stage_id) / "_stage.json", record)

    def wipe_stage(self, stage_id: str) -> None:
        """Remove every output of a stage (used by --force)."""
        shutil.rmtree(self.stage_dir(stage_id), ignore_errors=True)

    def clear(self, stage_ids: list[str]) -> None:
        """Remove a run's outputs (used by --overwrite): its stages' folders, its selections and
        the files a run writes at its root; anything else in the directory is left alone."""
        for name in [*stage_ids, "selections", "_final"]:  # _final: a killed run's end-of-run check
            shutil.rmtree(self.stage_dir(name), ignore_errors=True)
        for name in RUN_FILES:
            (self.root / name).unlink(missing_ok=True)

    def relative(self, path: Path) -> str:
        """A path inside the run, relative to its root (as markers record it)."""
        return str(path.relative_to(self.root))

    def remove_stale(self, stage_id: str, units: list[str], inputs: list[str]) -> None:
        """Delete outputs and markers of units (and collect results of input shards) that are
        no longer part of the run, e.g. after a file left the input pattern."""
        stage_dir, keep, keep_inputs = self.stage_dir(stage_id), set(units), set(inputs)
        for pattern, wanted in (("*.parquet", keep), ("_done/*.json", keep),
                                ("_collect/*.json", keep_inputs), ("_collect/*.parquet", keep_inputs),
                                ("_bucket/*.json", keep_inputs), ("_bucket/*.parquet", keep_inputs)):
            for path in stage_dir.glob(pattern):
                if path.stem not in wanted:
                    path.unlink()

    def remove_stale_units(self, stage_id: str, phase: str, units: list[str]) -> None:
        """Delete the markers of one phase's units that the run no longer has (the partitions of
        an earlier, larger P)."""
        for path in (self.stage_dir(stage_id) / phase).glob("*.json"):
            if path.stem not in set(units):
                path.unlink()

    def remove_temporaries(self) -> int:
        """Delete temporary files left by a killed run; return how many."""
        removed = 0
        if self.root.exists():
            for tmp in self.root.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed


def vouches(run: RunDir, marker: dict | None, config_hash: str) -> bool:
    """What every reader of a run means by committed: a marker of the stage's current
    configuration, listing its files, every one still there."""
    if marker is None or marker.get("config_hash") != config_hash:
        return False
    files = marker.get("files")
    return isinstance(files, list) and all(isinstance(name, str) and (run.root / name).is_file() for name in files)


def is_committed(run: RunDir, marker: dict | None, config_hash: str, fingerprint: str) -> bool:
    """A shard can be skipped when its marker vouches for it (see vouches) and it was made
    from the same inputs."""
    return vouches(run, marker, config_hash) and marker.get("input_fingerprint") == fingerprint
