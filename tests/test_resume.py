"""Resume: a run killed with SIGKILL and rerun gives the outputs of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from curate import ResumeError, load_pipeline, run_pipeline
from conftest import output_files, write_pipeline, write_pool


def _start(pipeline: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curate", "run", str(pipeline), "--quiet", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(process: subprocess.Popen, markers: Path, count: int, timeout: float = 120,
               sent: signal.Signals = signal.SIGKILL) -> None:
    """Send `sent` (SIGKILL) to the run as soon as `count` commit markers exist in `markers`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if markers.exists() and len(list(markers.glob("*.json"))) >= count:
            os.kill(process.pid, sent)
            process.wait()
            return
        if process.poll() is not None:
            pytest.fail(f"run finished before it could be killed: {process.stderr.read().decode()}")
        time.sleep(0.002)
    process.kill()
    pytest.fail("run never reached the kill point")


@pytest.fixture(scope="module")
def big_pool(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pool")
    write_pool(folder, shards=24, per_shard=60)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, big_pool) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("reference")
    pipeline = write_pipeline(folder / "p.yaml", str(big_pool / "*.tar"), folder / "run")
    run_pipeline(load_pipeline(pipeline))
    return output_files(folder / "run")


@pytest.mark.parametrize("stage, count, executor", [
    ("ingest_webdataset", 3, "local"), ("select", 5, "local"), ("export", 2, "local"), ("select", 5, "ray")])
def test_sigkill_then_rerun_matches_uninterrupted_run(tmp_path, big_pool, reference, stage, count, executor):
    run_dir = tmp_path / "run"
    pipeline = write_pipeline(tmp_path / "p.yaml", str(big_pool / "*.tar"), run_dir)
    options = ("--executor", executor, "--workers", "2")
    _kill_when(_start(pipeline, *options), run_dir / stage / "_done", count)
    done_before = len(list((run_dir / stage / "_done").glob("*.json")))
    assert done_before >= count

    rerun = _start(pipeline, *options)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    assert output_files(run_dir) == reference
    assert not list(run_dir.rglob(".*.tmp")), "temporary files left behind"

    dropped, curated, ingested = (_uids(run_dir / "dropped.parquet"), _uids(run_dir / "export" / "shards"),
                                  _uids(run_dir / "ingest_webdataset"))
    assert len(set(dropped) | set(curated)) == len(dropped) + len(curated) == len(ingested) == 24 * 60
    assert set(dropped) | set(curated) == set(ingested)


def _uids(path: Path) -> list[str]:
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return pq.read_table(files, columns=["uid"]).column(0).to_pylist()


def test_rerun_of_finished_run_reuses_every_shard(tmp_path, pool):
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run")
    first = run_pipeline(load_pipeline(pipeline))
    before = output_files(tmp_path / "run")
    second = run_pipeline(load_pipeline(pipeline))
    assert all(stage["reused"] == stage["shards"] for stage in second["stages"])
    assert output_files(tmp_path / "run") == before
    assert second["curated"] == first["curated"]


def test_changed_config_is_refused_unless_forced(tmp_path, pool):
    run_dir = tmp_path / "run"
    run_pipeline(load_pipeline(write_pipeline(tmp_path / "a.yaml", str(pool / "*.tar"), run_dir)))
    changed = [{"stage": "caption_stats"},
               {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 6"}}},
               {"stage": "export", "params": {"samples_per_shard": 25}}]
    pipeline = write_pipeline(tmp_path / "b.yaml", str(pool / "*.tar"), run_dir, stages=changed)
    with pytest.raises(ResumeError, match="stage 'select'.*params changed: filters.*--force"):
        run_pipeline(load_pipeline(pipeline))

    summary = run_pipeline(load_pipeline(pipeline), force=True)
    stages = {s["stage_id"]: s for s in summary["stages"]}
    assert stages["ingest_webdataset"]["reused"] == 3 and stages["caption_stats"]["reused"] == 3
    assert stages["select"]["reused"] == 0
    assert stages["select"]["drop_counts"] == {"too_few_words": 60}
    assert summary["curated"] == 40


def test_changed_input_file_redoes_only_that_shard(tmp_path, pool):
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run")
    run_pipeline(load_pipeline(pipeline))
    write_pool(tmp_path / "other", shards=1, per_shard=10, start=500)
    (tmp_path / "other" / "pool-00000.tar").replace(pool / "pool-00001.tar")
    summary = run_pipeline(load_pipeline(pipeline))
    ingest = summary["stages"][0]
    assert (ingest["shards"], ingest["reused"]) == (3, 2)
    assert summary["ingested"] == 90


@pytest.mark.parametrize("victim", ["ingest_webdataset/pool-00001.parquet", "select/pool-00002.parquet",
                                    "select_top_fraction/_collect/pool-00000.parquet",
                                    "export/shards/00001.tar"])
def test_a_deleted_output_is_redone_on_the_next_run(tmp_path, pool, victim):
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run")
    run_pipeline(load_pipeline(pipeline))
    before = output_files(tmp_path / "run")
    (tmp_path / "run" / victim).unlink()
    summary = run_pipeline(load_pipeline(pipeline))
    assert output_files(tmp_path / "run") == before
    assert (tmp_path / "run" / victim).is_file()
    redone = sum(stage["shards"] - stage["reused"] for stage in summary["stages"])
    assert redone == (0 if "_collect" in victim else 1)  # a collect redo is not a stage shard


def test_removing_a_stage_is_named_and_force_clears_it(tmp_path, pool):
    run_dir = tmp_path / "run"
    run_pipeline(load_pipeline(write_pipeline(tmp_path / "a.yaml", str(pool / "*.tar"), run_dir)))
    without_top = [{"stage": "caption_stats"},
                   {"stage": "select", "params": {"filters": {"too_few_words": "caption_words >= 3",
                                                              "too_small": "width >= 16"}}},
                   {"stage": "export", "params": {"samples_per_shard": 25}}]
    pipeline = write_pipeline(tmp_path / "b.yaml", str(pool / "*.tar"), run_dir, stages=without_top)
    with pytest.raises(ResumeError, match=r"stage 'export'.*stages before it were \[.*'select_top_fraction'\]"):
        run_pipeline(load_pipeline(pipeline))
    summary = run_pipeline(load_pipeline(pipeline), force=True)
    assert not (run_dir / "select_top_fraction").exists()
    assert summary["curated"] == 60


def test_a_second_run_on_the_same_directory_is_refused_while_one_holds_it(tmp_path, pool):
    import fcntl

    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run")
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ResumeError, match="another curate run is using"):
            run_pipeline(load_pipeline(pipeline))
    assert run_pipeline(load_pipeline(pipeline))["ingested"] == 120


def test_another_pipeline_in_the_run_directory_is_refused_even_forced_unless_overwritten(tmp_path, pool):
    run_dir = tmp_path / "run"
    run_pipeline(load_pipeline(write_pipeline(tmp_path / "a.yaml", str(pool / "*.tar"), run_dir)))
    (run_dir / "notes.txt").write_text("mine")
    other = yaml.safe_load((tmp_path / "a.yaml").read_text()) | {"name": "other"}
    other["stages"] = other["stages"][:2]
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(other))
    for force in (False, True):
        with pytest.raises(ResumeError, match=r"another pipeline, 'test' \(stages: ingest_webdataset, caption_stats, "
                                              r"select, select_top_fraction, export\).*--overwrite"):
            run_pipeline(load_pipeline(tmp_path / "b.yaml"), force=force)
    assert (run_dir / "export" / "shards" / "sizes.json").is_file()  # nothing was touched
    summary = run_pipeline(load_pipeline(tmp_path / "b.yaml"), overwrite=True)
    assert summary["pipeline"] == "other" and summary["curated"] + summary["dropped"] == summary["ingested"]
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "caption_stats", "dropped.parquet", "ingest_webdataset", "notes.txt", "pipeline.yaml", "summary.json"]


def test_ctrl_c_says_what_is_kept_and_status_tells_interrupted_running_and_finished(tmp_path, big_pool, reference):
    import fcntl

    from typer.testing import CliRunner

    from curate.cli import app

    run_dir = tmp_path / "run"
    pipeline = write_pipeline(tmp_path / "p.yaml", str(big_pool / "*.tar"), run_dir)
    process = _start(pipeline)
    _kill_when(process, run_dir / "caption_stats" / "_done", 3, sent=signal.SIGINT)
    message = " ".join(process.stderr.read().decode().split())
    committed = sum(len(list(run_dir.glob(f"{stage}/_done/*.json"))) for stage in ("ingest_webdataset", "caption_stats"))
    assert process.returncode == 130, message
    assert f"interrupted: {committed:,} shards committed; rerun the same command to resume" in message
    status = CliRunner().invoke(app, ["status", str(run_dir)], env={"COLUMNS": "200"})
    assert "interrupted: rerun the same command to resume" in status.output
    export_row = next(line for line in status.output.splitlines() if "export" in line)
    assert export_row.split()[2:] == ["│", "-", "│", "-", "│", "-", "│"], export_row  # not reached
    with open(run_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert "running" in CliRunner().invoke(app, ["status", str(run_dir)], env={"COLUMNS": "200"}).output
    rerun = _start(pipeline)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    assert output_files(run_dir) == reference
    assert "finished" in CliRunner().invoke(app, ["status", str(run_dir)], env={"COLUMNS": "200"}).output.split("\n")[-2]
