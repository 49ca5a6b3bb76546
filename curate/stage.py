"""Stage base classes and the registry that pipeline files refer to by name.

Four kinds of stage:

- SourceStage: lists input shards on the driver and reads each into sample.v1 rows.
- ShardStage: `process(batch) -> batch` over Arrow record batches of one shard; it keeps every
  row, in order, and adds columns (scorers) or a drop_reason (filters).
- GlobalStage: `collect(view) -> small table` per shard, `reduce(tables) -> state` once, in
  a task of its own (or, overriding `reduce_with`, as trees of parallel tasks over the shards:
  see curate.tree_reduce), `apply(view, state, shard) -> table` per shard. Counts are global.
  PartitionedStage: a global stage whose reduce runs as P tasks over partitions of the
  collected rows, so that no task holds the pool (see curate.partitions).
- SinkStage: like a global stage, but its apply phase writes files (one unit per output shard)
  and `finalize` writes run-level files once all units are committed.
"""

from __future__ import annotations

import difflib
import re
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from curate.errors import ConfigError
from curate.schema import column_names, load_schema
from curate.view import ViewPlan

if TYPE_CHECKING:
    from curate.tree_reduce import TreeReduce


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs; the Ray executor reserves exactly this."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None  # bytes

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0 or (self.memory is not None and self.memory <= 0):
            raise ConfigError(f"resources must be positive, got {self}")


class StageParams(BaseModel):
    """Base of every stage's parameters: unknown keys are an error, not silently ignored. A field
    declared with `json_schema_extra=DESCRIBES_ONLY` (a licence) describes the outputs without
    changing them: it stays out of the stage's configuration hash."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # .inf survives a reload

    def deciding(self) -> dict:
        """The parameters that decide what the stage writes, as JSON."""
        describing = {name for name, field in type(self).model_fields.items()
                      if field.json_schema_extra == DESCRIBES_ONLY}
        return self.model_dump(mode="json", exclude=describing)


DESCRIBES_ONLY = {"describes_only": True}  # see StageParams


@dataclass(frozen=True)
class ShardSpec:
    """One input shard of a source: its id, what to read, and a fingerprint of the input."""

    shard: str
    location: Any
    fingerprint: str


@dataclass(frozen=True)
class Threshold:
    """A cut a stage makes on a score column: samples on the `keeps` side of `value` pass it."""

    column: str
    value: float
    keeps: Literal[">=", ">", "<=", "<"]
    label: str


class Stage(ABC):
    """Common part of every stage: registry name, parameters, schema, resources."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[StageParams]] = StageParams
    output_schema: ClassVar[str] = ""
    resources: ClassVar[Resources] = Resources()
    decides: ClassVar[bool] = False  # set by register(): the output schema has a drop_reason
    input_columns: ClassVar[tuple[str, ...] | None] = None
    batch_size: ClassVar[int] = 4096
    kind: ClassVar[str] = ""  # which runner of the pipeline runs it: each base class below names its own

    def __init__(self, params: StageParams, stage_id: str | None = None):
        self.params = params
        self.id = stage_id or self.name
        self.seconds: dict[str, float] = {}  # per phase the stage timed on this worker (see phase)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one of the stage's own phases (read, search, keep): the task it runs in puts the
        seconds in its commit marker, and the run summary sums them per stage (phase_seconds)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def phases_since(self, before: dict[str, float]) -> dict[str, float]:
        """The seconds of each phase timed since `before` (a copy of self.seconds taken then)."""
        return {name: round(value - before.get(name, 0.0), 4) for name, value in self.seconds.items()
                if value != before.get(name)}

    def setup(self) -> None:
        """Load models or other heavy state; called once per worker before any shard."""

    def needed_columns(self) -> tuple[str, ...] | None:
        """Columns of the shard view this stage reads (None: all). Stages may override."""
        return self.input_columns

    def schema(self) -> pa.Schema:
        """The Arrow schema of what this stage writes: its output_schema, unless a stage names
        its columns after its parameters (a scorer named after its model)."""
        return load_schema(self.output_schema)

    def content_digest(self) -> str | None:
        """A digest of the files the parameters point to (a model, a metadata list), so that a
        changed file counts as a changed configuration on resume. None: nothing to digest."""
        return None

    def borrowed_columns(self) -> tuple[str, ...]:
        """Columns of schema() that the stage's outputs do not hold: each output names, in its
        metadata, the row-aligned file they are read from (a DataComp pool's .npz embeddings,
        which a run then never copies). Default: none."""
        return ()

    def stored_schema(self) -> pa.Schema:
        """What the stage's output files hold: its schema without the borrowed columns."""
        borrowed = set(self.borrowed_columns())
        schema = self.schema()
        return pa.schema([f for f in schema if f.name not in borrowed], metadata=schema.metadata)

    def check_view(self, schema: pa.Schema) -> None:
        """Raise ConfigError if the stage cannot work on a view of this schema (checked before
        any shard runs). Stages whose parameters refer to columns override it."""

    def thresholds(self, details: dict | None) -> list[Threshold]:
        """The cuts this stage makes on score columns, for the run report (details: what the
        stage reported in the run summary). Default: none."""
        return []

    def intended_drop_share(self) -> float:
        """The share of what reaches it this stage is set to drop (a top fraction of 5% drops 95%),
        so that the end-of-run warnings do not take it for a fault. Default: none."""
        return 0.0

    def limitations(self, details: dict | None) -> list[str]:
        """What this stage's choices mean for the curated set, as lines of the dataset card's
        limitations (details: what the stage reported in the run summary). Default: none."""
        return []

class SourceStage(Stage):
    """A stage that brings samples in: it writes sample.v1 rows for each input shard."""

    output_schema = "sample.v1"
    input_columns = ()
    kind = "ingest"

    @abstractmethod
    def list_shards(self) -> list[ShardSpec]:
        """Enumerate the input shards (driver side). Raise InputError for missing inputs."""
        ...

    @abstractmethod
    def read_shard(self, spec: ShardSpec, warnings: list[str]) -> Iterator[dict]:
        """Yield one sample.v1 dict per source item of a shard, bad items included.

        Problems that lose items beyond recovery (a tar cut short) are appended to `warnings`.
        """
        ...

    def borrowed_files(self, spec: ShardSpec) -> dict[str, dict]:
        """Where a shard's borrowed columns lie (see borrowed_columns): column -> {"file": path or
        URL of an .npz, "key": its array, "fingerprint": of the file}."""
        return {}

    def read_shard_table(self, spec: ShardSpec, warnings: list[str]) -> pa.Table | None:
        """The same rows as read_shard, built column at a time (a source whose items need no
        Python each reads at Arrow speed); None: this shard is read row by row."""
        return None


class ShardStage(Stage):
    """A per-shard stage: it sees record batches of the shard view and returns as many rows."""

    kind = "per shard"

    @abstractmethod
    def process(self, batch: pa.RecordBatch) -> pa.Table | pa.RecordBatch:
        """Return the output columns (uid first) for every row of `batch`, in order."""
        ...


class Collected(Mapping):
    """The collect results of a global stage, shard -> table in shard order, each read from disk
    only when asked for, so a reduce can stream them. `report_dir` is where the stage may write
    run-level files; `key` changes whenever the configuration or any collect result does, so a
    reduce may cache costly results under it."""

    def __init__(self, paths: dict[str, Path], report_dir: Path, key: str):
        self.paths, self.report_dir, self.key = paths, report_dir, key

    def __getitem__(self, shard: str) -> pa.Table:
        return pq.read_table(self.paths[shard])

    def column(self, shard: str, name: str) -> pa.ChunkedArray:
        """One column of a shard's collect result."""
        return pq.read_table(self.paths[shard], columns=[name]).column(0)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def rows(self, shard: str) -> int:
        """Rows of one shard's collect result, read from its footer only."""
        return pq.read_metadata(self.paths[shard]).num_rows


class ReducingStage(Stage):
    """Common part of global and sink stages: collect per shard, reduce once."""

    collect_columns: ClassVar[tuple[str, ...] | None] = None

    def needed_for_collect(self) -> tuple[str, ...] | None:
        """Columns the collect phase reads (None: all). Stages may override."""
        return self.collect_columns

    @abstractmethod
    def collect(self, view: pa.Table) -> pa.Table:
        """A small per-shard summary of the view."""
        ...

    @abstractmethod
    def reduce(self, collected: Collected) -> Any:
        """Combine the per-shard summaries (shard -> table, in shard order) into a small
        JSON-able state. Runs once, on a worker (a task of its own), so what it gathers does not
        stay in the driver's memory."""
        ...

    def reduce_with(self, collected: Collected, tree: TreeReduce) -> Any:
        """The reduce as the pipeline runs it, from the driver: `reduce` in one task of its own.
        A stage whose state is a sum over shards, or found by passes over them, runs them as
        parallel tasks instead (see curate.tree_reduce), so that no task reads the whole pool."""
        return tree.call(self.reduce, collected)


class GlobalStage(ReducingStage):
    """collect per shard -> reduce once -> apply per shard."""

    kind = "global"

    @abstractmethod
    def apply(self, view: pa.Table, state: Any, shard: str) -> pa.Table:
        """The stage's output for one shard (its view and its name), given the global state."""
        ...

    def finish(self, state: Any, stage_dir: Path, view: ViewPlan, outputs: dict[str, Path]) -> dict | None:
        """Once every shard's output is committed, in a task of its own: write run-level files
        under stage_dir/report/ (reading each shard's view and its output, shard -> Parquet
        path) and return figures for the run summary (the stage's `details`). Runs on every
        resume, so it must only depend on its inputs. Default: nothing."""
        return None


class PartitionedStage(GlobalStage):
    """A global stage whose reduce runs as P tasks, each over one partition of the collected rows
    (see curate.partitions): collect per shard -> prepare once (small) -> bucket each collected
    row -> reduce each partition -> combine the partitions' results (a task) -> apply per shard.

    Every row of a bucket lands in one partition; what a stage finds must depend only on the
    rows of each bucket, never on which buckets share a partition, so that any P gives the same
    outputs. `reduce` runs every step in this process (for benchmarks and small pools)."""

    kind = "partitioned"
    partition_bytes: ClassVar[int] = 1 << 30  # a partition's target size in memory, unless Params.partitions says
    buckets_need_prepare: ClassVar[bool] = False  # True: buckets come from prepare (k-means clusters)

    def prepare(self, collected: Collected) -> dict | None:
        """Run once before bucketing, in a task: a small JSON-able state every bucket and
        partition task receives (k-means centroids' file, an evaluation set's embeddings' file).
        Default: none."""
        return None

    def bucket_count(self, prepared: dict | None) -> int:
        """B, the number of buckets (hash prefixes by default)."""
        from curate.partitions import HASH_BUCKETS

        return HASH_BUCKETS

    @abstractmethod
    def buckets(self, rows: pa.Table, prepared: dict | None) -> pa.Table:
        """For collected rows, their bucket (int32 column "bucket", in [0, B)) and any columns to
        store beside them (a distance to the centroid)."""
        ...

    def row_bytes(self, prepared: dict | None) -> float:
        """What one collected row costs a partition task in memory, for the check that a
        partition fits before it is read. Default: 64 bytes."""
        return 64.0

    @abstractmethod
    def reduce_partition(self, rows: pa.Table, prepared: dict | None, report_dir: Path, name: str) -> dict:
        """Reduce one partition's rows (with their shard column) and write what it found under
        report_dir, in files named after the partition; return a small JSON-able result, with
        "files" (paths written). Seconds of the phases it times (see phase) reach its marker."""
        ...

    @abstractmethod
    def combine(self, results: list[dict], prepared: dict | None, report_dir: Path) -> dict:
        """The apply phase's state from every partition's result, in partition order, in a task
        of its own: it may read what the partitions wrote and write under report_dir (the state
        itself goes to every apply task: keep it small)."""
        ...

    def partitions(self) -> int | None:
        """P when the pipeline sets it (a stage parameter `partitions`), else None."""
        return getattr(self.params, "partitions", None)

    def reduce(self, collected: Collected) -> dict:
        """Every step in this process, one after another, as the pipeline runs them: prepare,
        each shard's rows bucketed (written to a _bucket folder beside the report folder), then
        the partitions of the pipeline's plan one at a time, then combine. The same state as
        the stage run partitioned, and a partition's memory at a time."""
        import shutil

        from curate.partitions import BUCKETS, bucketed, plan_for, prepared_state, read_partition, single_threaded
        from curate.run import write_parquet_atomic

        prepared, folder = prepared_state(self, collected)[0], collected.report_dir.parent / BUCKETS
        paths = {shard: folder / f"{shard}.parquet" for shard in collected}
        for shard, path in paths.items():
            write_parquet_atomic(path, bucketed(self, collected[shard], prepared))
        plan = plan_for(list(paths.values()), self.bucket_count(prepared),
                        int(self.partition_bytes / self.row_bytes(prepared)), self.partitions())
        results = []
        for index in range(plan.count):
            rows = read_partition(paths, plan.bounds[index], plan.bounds[index + 1])
            with single_threaded():
                results.append(self.reduce_partition(rows, prepared, collected.report_dir, plan.name(index)))
        shutil.rmtree(folder, ignore_errors=True)
        return self.combine(results, prepared, collected.report_dir)


class SinkStage(ReducingStage):
    """A global stage whose apply phase writes files instead of per-shard sidecars."""

    kind = "sink"

    @abstractmethod
    def units(self, state: Any) -> list[str]:
        """Names of the independent output units (e.g. output shards) for this state."""
        ...

    @abstractmethod
    def write_unit(self, unit: str, state: Any, out_dir: Path, view: ViewPlan) -> dict:
        """Write one output unit under out_dir, reading input shards through `view`; return its
        marker fields: rows, output_sha256, and files (the paths written, relative to out_dir)."""
        ...

    @abstractmethod
    def unit_uids(self, unit: str, state: Any, out_dir: Path) -> pa.Array:
        """The uids one written unit holds (read back from what was written), which the run
        checks against ingested = curated + dropped."""
        ...

    @abstractmethod
    def finalize(self, state: Any, out_dir: Path) -> dict:
        """Write run-level files once every unit is committed and out_dir/subset.npy (the sorted
        uids of every unit) is written; return the summary's outputs."""
        ...


_REGISTRY: dict[str, type[Stage]] = {}
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage available to pipeline files under `cls.name`."""
    if not _SNAKE.match(cls.name):
        raise ValueError(f"stage name {cls.name!r} must be snake_case")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"stage name {cls.name!r} is registered twice")
    if not cls.output_schema:
        raise ValueError(f"stage {cls.name!r} declares no output_schema")
    cls.decides = "drop_reason" in column_names(cls.output_schema)
    _REGISTRY[cls.name] = cls
    return cls


def stage_class(name: str) -> type[Stage]:
    """Look a stage up by its registry name; the error lists the names that exist."""
    import curate.stages  # noqa: F401  (registers the built-in stages)

    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown stage {name!r}{hint} (known stages: {', '.join(sorted(_REGISTRY))}; "
                          f"`curate stages` describes them)") from None


def registered_stages() -> dict[str, type[Stage]]:
    """All registered stages by name."""
    import curate.stages  # noqa: F401

    return dict(_REGISTRY)
