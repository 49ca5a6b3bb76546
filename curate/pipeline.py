"""The driver: runs a pipeline's stages in order, skipping committed shards, then checks
that every ingested uid is curated or dropped exactly once."""

from __future__ import annotations

import fcntl
import time
from contextlib import nullcontext
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curate.config import PipelineConfig
from curate.errors import ConfigError, ResumeError
from curate.executors import Executor, make_executor
from curate.executors.orphans import end_recorded_processes, record_processes
from curate.finalize import finalize_run
from curate.io.serve import serve_folder
from curate.progress import NullProgress, Progress
from curate.run import LOCK, RunDir, is_committed, stable_hash, write_atomic
from curate.partitions import BUCKETS, REDUCED, PartitionPlan, plan_for, prepared_state
from curate.stage import (Collected, GlobalStage, PartitionedStage, ReducingStage, ShardStage, SinkStage,
                          SourceStage, Stage)
from curate.tasks import (COLLECT, DONE, PHASES, ApplyTask, BucketTask, CollectTask, PartitionInputs, PartitionTask,
                          ShardTask, SinkTask, SourceTask)
from curate.tree_reduce import TreeReduce
from curate.view import UpstreamStage, plan_view

_HELPERS = ".helper-processes.json"


@dataclass
class StageReport:
    """What one stage did in this run (figures cover committed shards, reused or new)."""

    stage_id: str
    name: str
    shards: int = 0
    reused: int = 0
    rows: int = 0
    alive_in: int = 0
    drop_counts: Counter = field(default_factory=Counter)
    worker_seconds: float = 0.0
    wall_seconds: float = 0.0
    phase_seconds: Counter = field(default_factory=Counter)  # the stage's own phases (Stage.phase), every task
    warnings: list[str] = field(default_factory=list)
    details: dict | None = None  # a global stage's own figures (see GlobalStage.finish)
    intended_drop_share: float = 0.0  # see Stage.intended_drop_share

    @property
    def kept(self) -> int:
        """Rows still alive after this stage."""
        return self.alive_in - sum(self.drop_counts.values())

    def add(self, marker: dict) -> None:
        """Fold one shard's commit marker into the report."""
        self.rows += marker.get("rows", 0)
        self.alive_in += marker.get("alive_in", marker.get("rows", 0))
        self.drop_counts.update(marker.get("drop_counts", {}))
        self.worker_seconds += marker.get("seconds", 0.0)
        self.warnings += [f"shard {marker['shard']}: {w}" for w in marker.get("warnings", [])]


def stage_hashes(stages: list[Stage]) -> list[str]:
    """Each stage's config hash, chained so that a change upstream changes every later hash."""
    hashes, previous = [], ""
    for stage in stages:
        own = {"stage": stage.name, "params": stage.params.deciding(), "schema": stage.output_schema}
        content = stage.content_digest()
        if content is not None:
            own["content"] = content
        previous = stable_hash([previous, own])
        hashes.append(previous)
    return hashes


def check_resume(run: RunDir, stages: list[Stage], hashes: list[str], force: bool) -> None:
    """Refuse to mix configurations; with force, wipe the first changed stage and all after it,
    and the folders of stages the pipeline no longer has."""
    before = previous_stage_ids(run)
    for index, (stage, config_hash) in enumerate(zip(stages, hashes)):
        record = run.stage_record(stage.id)
        if record is None or record["config_hash"] == config_hash:
            continue
        if not force:
            raise ResumeError(
                f"stage {stage.id!r} in {run.root} was run with a different configuration "
                f"({_what_changed(record, stage, before, [s.id for s in stages])}); rerun with "
                f"--force to redo it and the stages after it, or choose another run directory"
            )
        for later in stages[index:]:
            run.wipe_stage(later.id)
        for removed in set(before) - {s.id for s in stages}:
            run.wipe_stage(removed)
        return


def previous_pipeline(run: RunDir) -> dict | None:
    """The pipeline last run in this directory, as it recorded it (None for a new directory)."""
    path = run.root / "pipeline.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def previous_stage_ids(run: RunDir) -> list[str]:
    """The stage ids of the pipeline last run in this directory (none for a new one)."""
    before = previous_pipeline(run) or {"stages": []}
    return [entry.get("id") or entry["stage"] for entry in before["stages"]]


def check_same_pipeline(run: RunDir, config: PipelineConfig, overwrite: bool) -> None:
    """A run directory holds one pipeline. Another one (another name, or another ingest stage:
    nothing of the run could be reused) is refused, --force or not, naming the one that is
    there; with overwrite, that one's outputs are removed first."""
    before = previous_pipeline(run)
    if before is None:
        return
    source = lambda entries: entries[0].get("id") or entries[0]["stage"]  # noqa: E731
    now = config.model_dump(mode="json")
    if before["name"] == config.name and source(before["stages"]) == source(now["stages"]):
        return
    if not overwrite:
        stages = ", ".join(entry.get("id") or entry["stage"] for entry in before["stages"])
        raise ResumeError(f"{run.root} holds the run of another pipeline, {before['name']!r} (stages: {stages}); "
                          f"choose another run directory, or rerun with --overwrite to delete its outputs and "
                          f"replace it with {config.name!r}")
    run.clear(previous_stage_ids(run))


def _what_changed(record: dict, stage: Stage, before: list[str], now: list[str]) -> str:
    old, new = record.get("params", {}), stage.params.deciding()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if record.get("stage") != stage.name:
        return f"was {record.get('stage')!r}, now {stage.name!r}"
    if changed:
        return f"params changed: {', '.join(changed)}"
    if record.get("content") != stage.content_digest():
        return "a file its params point to changed"
    earlier = lambda ids: ids[: ids.index(stage.id)] if stage.id in ids else ids  # noqa: E731
    if earlier(before) != earlier(now):
        return f"the stages before it were {earlier(before)}, now {earlier(now)}"
    return "a stage before it changed"


def validate_layout(stages: list[Stage]) -> None:
    """One source first, at most one sink and only last."""
    if not isinstance(stages[0], SourceStage):
        raise ConfigError(f"the first stage must be an ingest stage, not {stages[0].name!r}")
    for index, stage in enumerate(stages[1:], start=1):
        if isinstance(stage, SourceStage):
            raise ConfigError(f"stage {stage.id!r}: only the first stage may ingest")
        if isinstance(stage, SinkStage) and index != len(stages) - 1:
            raise ConfigError(f"stage {stage.id!r} writes the final output and must come last")


class PipelineRun:
    """One invocation of a pipeline on a run directory."""

    def __init__(self, config: PipelineConfig, executor: Executor, force: bool = False,
                 progress: Progress | None = None, overwrite: bool = False):
        self.config = config
        self.run = RunDir(Path(config.run_dir).resolve())  # workers may run elsewhere
        self.executor = executor
        self.force = force
        self.overwrite = overwrite
        self.progress = progress or NullProgress()
        self.stages = config.build_stages()
        validate_layout(self.stages)
        self.hashes = stage_hashes(self.stages)
        self.shards: list[str] = []
        self.digests: dict[str, dict[str, str]] = {}
        self.reports: list[StageReport] = []
        self.phase_seconds: dict[str, Counter] = defaultdict(Counter)  # stage id -> its phases, so far
        self.sink: tuple[SinkStage, object] | None = None

    def execute(self) -> dict:
        """Run every stage, then finalize and check the invariant; return the summary.

        One run at a time per directory: a second one is refused while the first holds the lock.
        """
        self.run.root.mkdir(parents=True, exist_ok=True)
        with open(self.run.root / LOCK, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ResumeError(f"another curate run is using {self.run.root}; wait for it to end") from None
            serve = self.config.serve
            with serve_folder(serve.root, serve.port) if serve else nullcontext():
                return self._execute_locked()

    def _execute_locked(self) -> dict:
        (self.run.root / "summary.json").unlink(missing_ok=True)  # unfinished until checked again
        self.run.remove_temporaries()
        check_same_pipeline(self.run, self.config, self.overwrite)
        check_resume(self.run, self.stages, self.hashes, self.force)
        dumped = yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
        write_atomic(self.run.root / "pipeline.yaml", dumped.encode())
        for index, stage in enumerate(self.stages[1:], start=1):
            self._plan(stage, index)  # column and predicate errors before any work is done
        helpers = self.run.root / _HELPERS
        end_recorded_processes(helpers)  # what a killed driver's Ray instance left running
        with self.executor:
            record_processes(helpers, self.executor.helper_processes())
            for index, stage in enumerate(self.stages):
                self.reports.append(self._run_stage(index, stage))
            self.run.remove_temporaries()  # those of tasks whose worker died and that Ray ran again
            deciders = [s.id for s in self.stages if s.decides]
            summary = finalize_run(self.run, self.executor, self.progress, self.config.name, deciders, self.shards,
                                   self.reports, self.sink, self.config.executor.check_partitions)
        helpers.unlink(missing_ok=True)
        return summary

    def _run_stage(self, index: int, stage: Stage) -> StageReport:
        report = StageReport(stage.id, stage.name, intended_drop_share=stage.intended_drop_share())
        started = time.perf_counter()
        runner = {"ingest": self._run_source, "per shard": self._run_shard_stage, "global": self._run_global,
                  "partitioned": self._run_partitioned, "sink": self._run_sink}[stage.kind]
        runner(stage, index, report)
        report.wall_seconds = time.perf_counter() - started
        report.phase_seconds = self.phase_seconds.pop(stage.id, Counter())
        return report

    def _run_shard_stage(self, stage: ShardStage, index: int, report: StageReport) -> None:
        self._run_tasks(stage, index, report, ShardTask, plan=self._plan(stage, index))

    def _run_global(self, stage: GlobalStage, index: int, report: StageReport) -> None:
        self._apply(stage, index, report, self._reduced(stage, index))

    def _run_partitioned(self, stage: PartitionedStage, index: int, report: StageReport) -> None:
        """collect -> prepare -> bucket -> reduce P partitions in parallel -> combine -> apply."""
        collected = self._collect(stage, index)
        prepared, phases = self.executor.call(prepared_state, stage, collected, resources=stage.resources)
        self.phase_seconds[stage.id].update(phases)
        inputs = self._bucketed(stage, index, collected, prepared)
        target_rows = int(stage.partition_bytes / stage.row_bytes(prepared))
        plan = self.executor.call(plan_for, list(inputs.values()), stage.bucket_count(prepared), target_rows,
                                  stage.partitions())
        salt = stable_hash([collected.key, prepared])
        todo = {plan.name(p): PartitionTask(str(self.run.root), plan.name(p), self.hashes[index],
                                            stable_hash([salt, plan.bounds[p], plan.bounds[p + 1]]),
                                            low=plan.bounds[p], high=plan.bounds[p + 1], rows=plan.rows[p])
                for p in range(plan.count)}
        self.run.remove_stale_units(stage.id, REDUCED, list(todo))
        reduced = StageReport(stage.id, stage.name)
        shared = PartitionInputs(prepared, {shard: str(path) for shard, path in inputs.items()})
        results = self._execute(stage, index, reduced, todo, shared, phase=REDUCED)
        state = self.executor.call(stage.combine, [marker["result"] for marker in results.values()], prepared,
                                   collected.report_dir, resources=stage.resources)
        self._apply(stage, index, report, state)
        report.details = (report.details or {}) | partition_figures(plan, reduced)

    def _bucketed(self, stage: PartitionedStage, index: int, collected: Collected, prepared) -> dict[str, Path]:
        """shard -> its collected rows in bucket order: the collect results themselves, or, when
        buckets come from the prepared state, those of a bucket task per shard."""
        if not stage.buckets_need_prepare:
            return dict(collected.paths)
        todo = {shard: BucketTask(str(self.run.root), shard, self.hashes[index],
                                  stable_hash([collected.key, shard, prepared])) for shard in self.shards}
        self._execute(stage, index, StageReport(stage.id, stage.name), todo, prepared, phase=BUCKETS)
        return {shard: self.run.phase_path(stage.id, BUCKETS, shard) for shard in self.shards}

    def _apply(self, stage: GlobalStage, index: int, report: StageReport, state) -> None:
        """A global stage's apply phase per shard, then its finish task."""
        plan = self._plan(stage, index)
        self._run_tasks(stage, index, report, ApplyTask, plan=plan, shared=state, salt=stable_hash(state))
        outputs = {shard: self.run.output_path(stage.id, shard) for shard in self.shards}
        report.details = self.executor.call(stage.finish, state, self.run.stage_dir(stage.id), plan, outputs)

    def _upstream(self, index: int) -> list[UpstreamStage]:
        return [UpstreamStage(s.id, s.schema(), s.decides) for s in self.stages[:index]]

    def _plan(self, stage: Stage, index: int, collect: bool = False):
        needed = stage.needed_for_collect() if collect else stage.needed_columns()
        plan = plan_view(str(self.run.root), self._upstream(index), needed, stage.id)
        stage.check_view(plan.schema)
        return plan

    def _upstream_digests(self, index: int, shard: str) -> tuple[tuple[str, str], ...]:
        """(stage id, output digest) of every earlier stage's output for a shard."""
        return tuple((s.id, self.digests[s.id][shard]) for s in self.stages[:index])

    def _fingerprint(self, index: int, shard: str, salt: str = "") -> str:
        return stable_hash([digest for _, digest in self._upstream_digests(index, shard)] + [salt])

    def _record(self, stage: Stage, index: int, units: list[str]) -> None:
        self.run.remove_stale(stage.id, units, self.shards)
        self.run.write_stage_record(stage.id, {
            "stage": stage.name, "id": stage.id, "config_hash": self.hashes[index],
            "params": stage.params.deciding(), "content": stage.content_digest(), "shards": units,
        })

    def _run_source(self, stage: SourceStage, index: int, report: StageReport) -> None:
        specs = stage.list_shards()
        self.shards = [spec.shard for spec in specs]
        self._record(stage, index, self.shards)
        todo = {spec.shard: SourceTask(str(self.run.root), spec.shard, self.hashes[index],
                                       spec.fingerprint, spec) for spec in specs}
        self._execute(stage, index, report, todo)

    def _run_tasks(self, stage: Stage, index: int, report: StageReport, task_class, plan,
                   shared=None, salt: str = "") -> None:
        self._record(stage, index, self.shards)
        todo = {
            shard: task_class(str(self.run.root), shard, self.hashes[index],
                              self._fingerprint(index, shard, salt), plan,
                              upstream=self._upstream_digests(index, shard))
            for shard in self.shards
        }
        self._execute(stage, index, report, todo, shared)

    def _execute(self, stage: Stage, index: int, report: StageReport, todo: dict,
                 shared=None, phase: str = DONE) -> dict[str, dict]:
        """Run the tasks of one phase whose units are not committed; return every unit's marker
        in order. The report counts the units and those reused; the output phase's markers are
        folded into it."""
        markers: dict[str, dict] = {}
        for unit, task in todo.items():
            marker = self.run.read_marker(stage.id, unit, phase)
            if is_committed(self.run, marker, task.config_hash, task.fingerprint):
                markers[unit] = marker
        pending = [task for unit, task in todo.items() if unit not in markers]
        reused = len(markers)
        label = stage.id if phase == DONE else f"{stage.id} ({PHASES[phase]})"
        with self.progress.stage(label, len(todo), done=len(markers)) as bar:
            for marker in self.executor.map_shards(stage, pending, shared, bar.advance):
                markers[marker["shard"]] = marker
        ordered = {unit: markers[unit] for unit in todo}
        for marker in ordered.values():
            self.phase_seconds[stage.id].update(marker.get("phases", {}))
        report.shards, report.reused = len(todo), reused
        if phase == DONE:
            for marker in ordered.values():
                report.add(marker)
            self.digests[stage.id] = {u: m.get("output_sha256", "") for u, m in ordered.items()}
        return ordered

    def _collect(self, stage: ReducingStage, index: int) -> Collected:
        """The collect phase, per shard (cached by marker): what a reduce reads."""
        plan = self._plan(stage, index, collect=True)
        todo = {
            shard: CollectTask(str(self.run.root), shard, self.hashes[index],
                               self._fingerprint(index, shard), plan)
            for shard in self.shards
        }
        markers = self._execute(stage, index, StageReport(stage.id, stage.name), todo, phase=COLLECT)
        key = stable_hash([self.hashes[index], [markers[shard]["output_sha256"] for shard in self.shards]])
        paths = {shard: self.run.collect_path(stage.id, shard) for shard in self.shards}
        return Collected(paths, self.run.stage_dir(stage.id) / "report", key)

    def _reduced(self, stage: ReducingStage, index: int):
        """collect, then reduce: the state the apply phase is given."""
        collected = self._collect(stage, index)
        return stage.reduce_with(collected, TreeReduce(self.executor, stage, collected, self.progress))

    def _run_sink(self, stage: SinkStage, index: int, report: StageReport) -> None:
        state = self._reduced(stage, index)
        units = stage.units(state)
        self._record(stage, index, units)
        salt = stable_hash([stable_hash(state), [self._fingerprint(index, shard) for shard in self.shards]])
        plan = self._plan(stage, index)
        todo = {
            unit: SinkTask(str(self.run.root), unit, self.hashes[index], salt, plan)
            for unit in units
        }
        self._execute(stage, index, report, todo, shared=state)
        report.alive_in = report.rows
        self.sink = (stage, state)  # finalized with the run


def partition_figures(plan: PartitionPlan, reduced: StageReport) -> dict:
    """What the run summary says of a partitioned reduce: P and how many partitions an earlier
    run had reduced, and the largest partition and bucket (which bound a task's memory)."""
    return {"partitions": plan.count, "partitions_reused": reduced.reused, "largest_partition": max(plan.rows),
            "largest_bucket": plan.largest_bucket}


def run_pipeline(config: PipelineConfig, *, executor: str | None = None, workers: int | None = None,
                 force: bool = False, progress: Progress | None = None, overwrite: bool = False) -> dict:
    """Run (or resume) a pipeline and return its summary.

    executor/workers override the pipeline file's `executor:` section. force: redo the stages
    whose configuration changed, and those after them; overwrite: replace the run of another
    pipeline in the run directory.
    """
    settings = config.executor
    backend = make_executor(executor or settings.kind, workers or settings.workers, settings.address)
    return PipelineRun(config, backend, force=force, progress=progress, overwrite=overwrite).execute()
