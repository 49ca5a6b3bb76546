"""Fault injection: a full pipeline (a model and every kind of global stage) whose driver or Ray
worker is killed mid-run ends, once resumed, byte-identical to an uninterrupted run."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.bench import faults
from curate.pools import build


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> faults.FaultBench:
    work = tmp_path_factory.mktemp("faults")
    build("synthetic", work / "pool", n=300, samples_per_shard=50)
    return faults.prepare(work, work / "pool", ["local", "ray"], workers=2, samples_per_shard=50)


@pytest.mark.parametrize("executor, targets, moment", [("local", ["driver", "driver"], 0.45), ("ray", ["worker"], 0.5),
                                                       ("ray", ["driver"], 0.8)])
def test_a_killed_run_resumes_to_the_uninterrupted_result(bench, tmp_path, executor, targets, moment):
    planned = [faults.Fault(target, moment * bench.durations[executor]) for target in targets]
    trial = faults.run_trial(faults.Trial(0, executor, planned), bench.pipeline, tmp_path / "run", 2,
                             bench.reference, bench.stage_ids)
    assert trial.ok, trial.problem
    for fault in planned:
        assert fault.hit and fault.stage in bench.stage_ids, fault
        assert fault.leaked == 0
    assert trial.runs == 1 + targets.count("driver")


def test_the_reference_covers_every_stage_and_agrees_across_executors(bench):
    assert set(bench.durations) == {"local", "ray"}  # prepare() refuses executors that disagree
    assert {"semdedup", "select_top_fraction", "metaclip_balance", "clip_score"} <= set(bench.stage_ids)
    assert any(name.startswith("export/shards/") and name.endswith(".tar") for name in bench.reference)


def test_the_uid_check_finds_a_lost_and_a_doubled_uid(bench, tmp_path):
    run = tmp_path / "run"
    trial = faults.run_trial(faults.Trial(0, "local", []), bench.pipeline, run, 1, bench.reference, bench.stage_ids)
    assert trial.ok, trial.problem
    dropped = pq.read_table(run / "dropped.parquet")
    pq.write_table(dropped.slice(1), run / "dropped.parquet")
    assert "1 ingested uids are neither curated nor dropped" == faults.uid_problem(run, bench.stage_ids[0], "export")
    pq.write_table(pa.concat_tables([dropped, dropped.slice(0, 1)]), run / "dropped.parquet")
    assert faults.uid_problem(run, bench.stage_ids[0], "export") == "a uid is dropped twice"
    assert "differ from the uninterrupted run" in faults._result_problem(run, bench.reference, bench.stage_ids)


@pytest.mark.parametrize("executor, target", [("local", "driver"), ("ray", "worker"), ("ray", "driver")])
def test_a_kill_during_a_partitioned_reduce_resumes_to_the_uninterrupted_result(bench, tmp_path, executor, target):
    planned = [faults.Fault(target, 0.0, faults.REDUCE)]
    trial = faults.run_trial(faults.Trial(0, executor, planned), bench.pipeline, tmp_path / "run", 2,
                             bench.reference, bench.stage_ids)
    assert trial.ok, trial.problem
    assert planned[0].hit and planned[0].phase == faults.REDUCE and planned[0].stage in ("dedup_exact", "semdedup")
