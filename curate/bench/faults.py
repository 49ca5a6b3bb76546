"""`curate bench faults`: kill a full pipeline's driver or one of its Ray workers at random
moments, resume, and check that the result is byte for byte the uninterrupted run's, with every
ingested uid curated or dropped exactly once.

Each trial runs `curate run` as a child process on a fresh run directory. A fault is a SIGKILL
at a moment drawn uniformly from the run's uninterrupted duration: to the driver (the run then
stops and is started again) or to a Ray worker busy with a task (Ray runs the task again and
the run goes on). A trial holds one to three faults, then runs to the end without one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import yaml

from curate.config import PipelineConfig
from curate.pools.synthetic import COLORS, SHAPES
from curate.run import output_digests

_COLOURS = tuple(name for name, _ in COLORS)
_TASK_TITLES = ("ray::_run", "ray::_call")  # shard tasks; a reduce or the final check
_RESUMES = 3  # runs without a fault allowed after the last one before a trial counts as failed
PARTITIONS = 4  # of each deduplication stage's reduce, so that a fault can hit one of several
REDUCE = "_reduce"  # the phase folder of a partitioned reduce's markers
AIMED = 1 / 3  # share of faults aimed at a partitioned reduce rather than at a random moment
_PHASES = ("_collect", "_bucket", REDUCE, "_done")


def fault_metadata() -> list[str]:
    """MetaCLIP entries for the synthetic pool's captions: colours, shapes and their pairs."""
    return [*_COLOURS, *SHAPES, *(f"{c} {s}" for c in _COLOURS for s in SHAPES)]


def fault_pipeline(pool: Path, run_dir: Path, metadata: Path, samples_per_shard: int) -> PipelineConfig:
    """Every kind of stage from ingest to export: per-shard scorers and filters, a model, and the
    global stages (exact and semantic dedup, a top fraction, MetaCLIP balancing, the sink)."""
    return PipelineConfig(name="bench-faults", run_dir=run_dir, stages=[
        {"stage": "ingest_webdataset", "params": {"inputs": str(pool / "*.tar")}},
        {"stage": "caption_stats"},
        {"stage": "caption_junk"},
        {"stage": "basic_filter", "params": {"min_side": 32}},
        {"stage": "select", "params": {"filters": {"mostly_not_letters": "caption_alpha_fraction >= 0.6"}}},
        {"stage": "dedup_exact", "params": {"keep_by": "caption_words", "partitions": PARTITIONS}},
        {"stage": "clip_score", "params": {"name": "dfn", "model": "curate-tiny-vit", "device": "cpu"}},
        {"stage": "semdedup", "params": {"embedding": "dfn_image_embedding", "keep_by": "dfn_score",
                                         "clusters": 16, "partitions": PARTITIONS}},
        {"stage": "select_top_fraction", "params": {"column": "dfn_score", "fraction": 0.7}},
        {"stage": "metaclip_match", "params": {"metadata": str(metadata)}},
        {"stage": "metaclip_balance", "params": {"t": 40, "metadata": str(metadata)}},
        {"stage": "export", "params": {"samples_per_shard": samples_per_shard}},
    ])


@dataclass
class Fault:
    """One SIGKILL: to whom, when (seconds after the run started), during which stage."""

    target: str  # "driver" or "worker"
    at: float
    during: str | None = None  # REDUCE: struck when a partitioned reduce is under way, not at `at`
    stage: str | None = None
    phase: str | None = None  # the phase of the stage that was struck
    hit: bool = False  # False: the run ended first, or no worker was busy
    leaked: int = 0  # processes of a killed driver still running once the trial ended (then killed)
    family: list = field(default_factory=list, repr=False)  # the killed driver's processes


@dataclass
class Trial:
    """One trial's faults, how many runs it took, and whether its result was right."""

    index: int
    executor: str
    faults: list[Fault] = field(default_factory=list)
    runs: int = 0
    problem: str | None = None  # None: identical to the uninterrupted run, every uid once

    @property
    def ok(self) -> bool:
        """The outputs match the reference and the uid check passed."""
        return self.problem is None


def uid_problem(run_dir: Path, ingest: str, sink: str) -> str | None:
    """None when every ingested uid is curated or dropped, exactly once; else what is wrong."""
    read = lambda files: pq.read_table(files, columns=["uid"]).column(0).to_pylist()  # noqa: E731
    ingested = read(sorted((run_dir / ingest).glob("*.parquet")))
    curated = read(sorted((run_dir / sink / "shards").glob("*.parquet")))
    dropped = read(run_dir / "dropped.parquet")
    for name, uids in (("ingested", ingested), ("curated", curated), ("dropped", dropped)):
        if len(set(uids)) != len(uids):
            return f"a uid is {name} twice"
    if set(curated) & set(dropped):
        return "a uid is both curated and dropped"
    if set(curated) | set(dropped) != set(ingested):
        lost = len(set(ingested) - set(curated) - set(dropped))
        return f"{lost} ingested uids are neither curated nor dropped"
    return None


def start_run(pipeline: Path, run_dir: Path, executor: str, workers: int) -> subprocess.Popen:
    """`curate run` in a child process (its own session), its errors appended to a log beside
    the run directory: a file, not a pipe, which a chatty run could fill and block on."""
    command = [sys.executable, "-m", "curate", "run", str(pipeline), "--run-dir", str(run_dir), "--quiet",
               "--no-report", "--executor", executor, "--workers", str(workers)]
    with open(_log(run_dir), "ab") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def _log(run_dir: Path) -> Path:
    return run_dir.with_name(f"{run_dir.name}.stderr.log")


def _tail(run_dir: Path) -> str:
    log = _log(run_dir)
    return log.read_text(errors="replace").strip()[-600:] if log.exists() else ""


def busy_ray_workers(driver: psutil.Process) -> list[psutil.Process]:
    """The driver's Ray worker processes running a curate task: Ray titles a worker after the
    function it runs (the executor's `_run` or `_call`), so idle workers and Ray's own agents are
    left alone."""
    found = []
    for child in _descendants(driver):
        try:
            if child.cmdline()[0] in _TASK_TITLES:
                found.append(child)
        except (psutil.Error, IndexError):
            continue
    return found


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def running_stage(run_dir: Path, stage_ids: list[str]) -> str | None:
    """The last stage that has started writing (the one the run is in), if any."""
    started = [s for s in stage_ids if (run_dir / s / "_stage.json").exists()]
    return started[-1] if started else None


def running_phase(run_dir: Path, stage: str | None) -> str | None:
    """The latest phase a stage has started: collect, bucket, reduce or its output (_done)."""
    started = [phase for phase in _PHASES if stage and (run_dir / stage / phase).is_dir()]
    return started[-1] if started else None


def _reducing(run_dir: Path, stage_ids: list[str]) -> bool:
    """A partitioned reduce is under way: its stage has begun reducing, not yet applying."""
    stage = running_stage(run_dir, stage_ids)
    return running_phase(run_dir, stage) == REDUCE


def inject(process: subprocess.Popen, started: float, fault: Fault, run_dir: Path, stage_ids: list[str]) -> None:
    """Wait until fault.at seconds after the run started (or, for a fault aimed at a reduce,
    until one is under way), then SIGKILL the fault's target; record the moment, the stage and
    its phase, and whether it hit a live run."""
    driver = psutil.Process(process.pid)
    aimed = fault.during == REDUCE
    while process.poll() is None:
        if (not _reducing(run_dir, stage_ids)) if aimed else time.monotonic() < started + fault.at:
            time.sleep(0.005)  # not yet; a fault aimed at a reduce that missed one waits for the next
            continue
        workers = [] if fault.target == "driver" else busy_ray_workers(driver)
        if fault.target == "worker" and not workers:
            time.sleep(0.005)  # no task running this instant: try again until one is
            continue
        fault.stage = running_stage(run_dir, stage_ids)
        fault.phase = running_phase(run_dir, fault.stage)
        if aimed and fault.phase != REDUCE:
            continue  # the reduce ended while the workers were listed
        fault.at = round(time.monotonic() - started, 2)
        if fault.target == "driver":
            fault.family = _descendants(driver)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        else:
            random.choice(workers).kill()
        fault.hit = True
        return


def _reap(family: list[psutil.Process], grace: float = 5.0) -> int:
    """How many of a killed driver's processes are still running `grace` seconds from now;
    those are killed."""
    _, alive = psutil.wait_procs(family, timeout=grace)
    for leftover in alive:
        with suppress(psutil.Error):
            leftover.kill()
    return len(alive)


def run_trial(trial: Trial, pipeline: Path, run_dir: Path, workers: int, reference: dict[str, str],
              stage_ids: list[str]) -> Trial:
    """Inject the trial's faults in order (a killed driver is started again, a run that lost a
    worker goes on), resume until the run succeeds, then check the result."""
    shutil.rmtree(run_dir, ignore_errors=True)
    _log(run_dir).unlink(missing_ok=True)
    process, started = None, 0.0
    for fault in sorted(trial.faults, key=lambda f: f.at):
        if process is None or process.poll() is not None:
            if process is not None and process.returncode not in (0, -signal.SIGKILL):
                trial.problem = f"a run failed under its faults: {_tail(run_dir)}"
                return trial
            process, started = start_run(pipeline, run_dir, trial.executor, workers), time.monotonic()
            trial.runs += 1
        inject(process, started, fault, run_dir, stage_ids)
    for _ in range(_RESUMES):
        if process is not None and process.wait() == 0:
            break
        process = start_run(pipeline, run_dir, trial.executor, workers)
        trial.runs += 1
    for fault in trial.faults:
        fault.leaked = _reap(fault.family)
    if process.wait() != 0:
        trial.problem = f"the run does not finish after its faults: {_tail(run_dir)}"
        return trial
    trial.problem = _result_problem(run_dir, reference, stage_ids)
    return trial


def _result_problem(run_dir: Path, reference: dict[str, str], stage_ids: list[str]) -> str | None:
    digests = output_digests(run_dir)
    differing = sorted(name for name in set(digests) | set(reference) if digests.get(name) != reference.get(name))
    if differing:
        return f"{len(differing)} files differ from the uninterrupted run, e.g. {differing[:3]}"
    if list(run_dir.rglob(".*.tmp")):
        return "temporary files were left behind"
    return uid_problem(run_dir, stage_ids[0], stage_ids[-1])


def plan_trials(count: int, executors: list[str], durations: dict[str, float], seed: int) -> list[Trial]:
    """Trials cycling over the executors, each with one to three faults at random moments (a
    third of them when a partitioned reduce is under way); worker faults only where there are
    Ray workers."""
    rng = random.Random(seed)
    trials = []
    for index in range(count):
        executor = executors[index % len(executors)]
        targets = ("driver", "worker") if executor == "ray" else ("driver",)
        faults = [Fault(rng.choice(targets), round(rng.uniform(0.02, 0.95) * durations[executor], 2),
                        REDUCE if rng.random() < AIMED else None)
                  for _ in range(rng.randint(1, 3))]
        trials.append(Trial(index, executor, faults))
    return trials


def write_pipeline_file(config: PipelineConfig, path: Path) -> Path:
    """The pipeline as a YAML file `curate run` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def timed_reference(pipeline: Path, executor: str, workers: int, run_dir: Path) -> tuple[float, dict[str, str]]:
    """An uninterrupted run from scratch: its seconds and its output digests."""
    shutil.rmtree(run_dir, ignore_errors=True)
    _log(run_dir).unlink(missing_ok=True)
    started = time.perf_counter()
    process = start_run(pipeline, run_dir, executor, workers)
    if process.wait() != 0:
        raise RuntimeError(f"the uninterrupted {executor} run failed: {_tail(run_dir)}")
    return time.perf_counter() - started, output_digests(run_dir)


@dataclass
class FaultBench:
    """What the trials share: the pipeline file, the stage ids, the workers, the reference."""

    pipeline: Path
    stage_ids: list[str]
    workers: int
    durations: dict[str, float] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)


def prepare(work_dir: Path, pool: Path, executors: list[str], workers: int, samples_per_shard: int) -> FaultBench:
    """Write the metadata and the pipeline, and run it once uninterrupted on each executor; the
    runs must agree (same outputs on every executor), and give the reference and durations."""
    metadata = work_dir / "metadata.json"
    metadata.write_text(json.dumps(fault_metadata()))
    config = fault_pipeline(pool, work_dir / "reference", metadata, samples_per_shard)
    bench = FaultBench(write_pipeline_file(config, work_dir / "pipeline.yaml"),
                       [stage.id for stage in config.build_stages()], workers)
    for executor in executors:
        seconds, digests = timed_reference(bench.pipeline, executor, workers, work_dir / f"reference-{executor}")
        if bench.reference and digests != bench.reference:
            raise RuntimeError(f"the uninterrupted {executor} run differs from the {executors[0]} run")
        bench.durations[executor], bench.reference = seconds, digests
    return bench


def results_table(trials: list[Trial], durations: dict[str, float]):
    """A rich table: one row per trial, its faults (target@seconds in stage), runs, result."""
    from rich.table import Table

    table = Table(title="faults: " + ", ".join(f"{k} run {v:.1f} s uninterrupted" for k, v in durations.items()))
    for column in ("trial", "executor", "faults (target @ s, stage)", "runs", "result"):
        table.add_column(column)
    for trial in trials:
        faults = "; ".join(f"{f.target} @ {f.at:.1f} s, {f.stage or 'starting'}"
                           + (" (reduce)" if f.phase == REDUCE else "") + ("" if f.hit else " (missed)")
                           + (f", {f.leaked} leaked" if f.leaked else "") for f in trial.faults)
        table.add_row(str(trial.index), trial.executor, faults, str(trial.runs), "identical" if trial.ok else trial.problem)
    return table


def summary_line(trials: list[Trial]) -> str:
    """Trials passed, faults that hit by target, stages hit."""
    hits = [f for t in trials for f in t.faults if f.hit]
    by_target = {t: sum(f.target == t for f in hits) for t in ("driver", "worker")}
    stages = sorted({f.stage or "starting" for f in hits})
    return (f"{sum(t.ok for t in trials)}/{len(trials)} trials identical to the uninterrupted run; "
            f"{len(hits)} faults hit ({by_target['driver']} driver, {by_target['worker']} worker), "
            f"{sum(not f.hit for t in trials for f in t.faults)} missed; "
            f"{sum(f.phase == REDUCE for f in hits)} during a partitioned reduce; stages hit: {', '.join(stages)}; "
            f"processes leaked by a killed driver: {sum(f.leaked for f in hits)}")
