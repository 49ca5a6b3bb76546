"""The same pipeline gives byte-identical outputs on every executor and worker count."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import (CurateError, GlobalStage, Resources, ShardStage, StageParams, load_pipeline, register,
                    run_pipeline)
from conftest import output_files, write_pipeline, write_pool


def _run(tmp_path, pool, name, executor, workers=None):
    run_dir = tmp_path / name
    config = load_pipeline(write_pipeline(tmp_path / f"{name}.yaml", str(pool / "*.tar"), run_dir))
    summary = run_pipeline(config, executor=executor, workers=workers)
    return summary, output_files(run_dir)


def test_local_and_ray_outputs_are_byte_identical(tmp_path, pool, ray_session):
    local_summary, local = _run(tmp_path, pool, "local", "local")
    _, ray_two = _run(tmp_path, pool, "ray2", "ray", workers=2)
    _, ray_one = _run(tmp_path, pool, "ray1", "ray", workers=1)
    assert local.keys() == ray_two.keys() == ray_one.keys()
    assert any(name.endswith(".tar") for name in local)
    for name in local:
        assert local[name] == ray_two[name] == ray_one[name], name
    assert local_summary["ingested"] == 120
    assert local_summary["curated"] + local_summary["dropped"] == 120


def test_summary_counts_match_files(tmp_path, pool):
    summary, files = _run(tmp_path, pool, "local", "local")
    dropped = pq.read_table(tmp_path / "local" / "dropped.parquet")
    assert dropped.num_rows == summary["dropped"]
    assert sorted(set(dropped.column("dropped_by").to_pylist())) == [
        "ingest_webdataset", "select", "select_top_fraction"]
    stages = {s["stage_id"]: s for s in summary["stages"]}
    assert stages["ingest_webdataset"]["drop_counts"] == {"empty_caption": 20}
    assert stages["select"]["alive_in"] == 100
    assert stages["select"]["drop_counts"] == {"too_few_words": 40}
    assert stages["select_top_fraction"]["kept"] == 30
    assert summary["curated"] == 30


@register
class _TwoCpuStage(ShardStage):
    """Keeps everything; declares two CPUs per worker."""

    name = "test_two_cpu_probe"
    output_schema = "decision.v1"
    resources = Resources(cpus=2)
    input_columns = ()

    def process(self, batch):
        return pa.table({"uid": batch.column("uid"), "drop_reason": pa.nulls(batch.num_rows, pa.string())})


@register
class _NeedsGpu(_TwoCpuStage):
    name = "test_gpu_probe"
    resources = Resources(gpus=1)


def test_ray_honours_declared_resources(tmp_path, pool, ray_session):
    from curate.executors.ray import RayExecutor

    stage = _TwoCpuStage(_TwoCpuStage.Params(), "probe")
    with RayExecutor(workers=2) as executor:
        assert executor.parallelism(stage) == 1  # two CPUs each on a two-CPU instance
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "test_gpu_probe"}])
    with pytest.raises(CurateError, match=r"needs .*gpus=1.* the Ray cluster has"):
        run_pipeline(load_pipeline(pipeline), executor="ray", workers=2)


def test_inputs_can_be_any_fsspec_url(tmp_path, pool):
    memory = fsspec.filesystem("memory")
    for path in sorted(pool.glob("*.tar")):
        memory.pipe(f"/curate-test/{path.name}", path.read_bytes())
    summary, _ = _run(tmp_path, pool, "local", "local")
    pipeline = write_pipeline(tmp_path / "m.yaml", "memory://curate-test/pool-{00000..00002}.tar",
                              tmp_path / "memory-run")
    from_memory = run_pipeline(load_pipeline(pipeline))
    assert from_memory["curated"] == summary["curated"] and from_memory["ingested"] == 120
    assert output_files(tmp_path / "memory-run") == output_files(tmp_path / "local")


class _ProbeParams(StageParams):
    probe_dir: str


@register
class _SetupProbe(ShardStage):
    """Writes a file per setup() call and per processed shard, named by process id."""

    name = "test_setup_probe"
    Params = _ProbeParams
    output_schema = "decision.v1"
    input_columns = ()

    def setup(self):
        folder = Path(self.params.probe_dir)
        (folder / f"setup-{os.getpid()}-{uuid.uuid4().hex}").touch()

    def process(self, batch):
        (Path(self.params.probe_dir) / f"batch-{os.getpid()}-{uuid.uuid4().hex}").touch()
        return pa.table({"uid": batch.column("uid"), "drop_reason": pa.nulls(batch.num_rows, pa.string())})


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_setup_runs_once_per_worker(tmp_path, executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_session")
    write_pool(tmp_path / "pool", shards=8, per_shard=5)
    probes = tmp_path / "probes"
    probes.mkdir()
    pipeline = write_pipeline(tmp_path / "p.yaml", str(tmp_path / "pool" / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "test_setup_probe", "params": {"probe_dir": str(probes)}}])
    run_pipeline(load_pipeline(pipeline), executor=executor, workers=2)
    setups = [p.name.split("-")[1] for p in probes.glob("setup-*")]
    batches = {p.name.split("-")[1] for p in probes.glob("batch-*")}
    assert len(list(probes.glob("batch-*"))) == 8
    assert sorted(setups) == sorted(set(setups)), "a worker set the stage up twice"
    assert set(setups) == batches
    assert len(setups) in (range(1, 2) if executor == "local" else range(1, 3))


@register
class _ReduceProbe(GlobalStage):
    """Keeps everything; its reduce says which process ran it."""

    name = "test_reduce_probe"
    output_schema = "decision.v1"
    input_columns = ()

    def collect(self, view):
        return pa.table({"rows": [view.num_rows]})

    def reduce(self, collected):
        return {"pid": os.getpid(), "rows": sum(t.column("rows")[0].as_py() for t in collected.values())}

    def apply(self, view, state, shard):
        return pa.table({"uid": view.column("uid"), "drop_reason": pa.nulls(view.num_rows, pa.string())})

    def finish(self, state, stage_dir, view, outputs):
        return state


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_global_stage_reduces_on_a_worker_not_on_the_driver(tmp_path, pool, executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_session")
    pipeline = write_pipeline(tmp_path / "p.yaml", str(pool / "*.tar"), tmp_path / "run",
                              stages=[{"stage": "test_reduce_probe"}])
    summary = run_pipeline(load_pipeline(pipeline), executor=executor, workers=2)
    details = next(s for s in summary["stages"] if s["stage_id"] == "test_reduce_probe")["details"]
    assert details["rows"] == 120
    assert (details["pid"] == os.getpid()) == (executor == "local")


def test_the_next_run_ends_a_killed_runs_helpers_and_what_they_started_later(tmp_path):
    """A helper recorded when the run began, and a process it started after (as Ray starts a
    worker in place of a dead one), are both ended by end_recorded_processes."""
    import subprocess

    import psutil

    from curate.executors.orphans import end_recorded_processes, record_processes

    helper = subprocess.Popen(["bash", "-c", "sleep 0.3; sleep 60 & wait"])
    record_processes(tmp_path / "helpers.json", [psutil.Process(helper.pid)])
    for _ in range(200):
        if psutil.Process(helper.pid).children():
            break
        time.sleep(0.05)
    later = psutil.Process(helper.pid).children()[0]
    assert end_recorded_processes(tmp_path / "helpers.json") == 2
    helper.wait(timeout=10)
    later.wait(timeout=10)
    assert not (tmp_path / "helpers.json").exists()
