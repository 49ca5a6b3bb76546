"""The Ray executor: shard tasks on Ray workers, each worker setting a stage up once.

The pipeline's only module that imports ray (training's is curate/train/ray_train.py). Without
an address it starts a local Ray instance on this machine; with `auto` or `ray://host:port` it
joins an existing cluster.

Tasks (not actors) carry the work, so worker processes, started once with the instance, are
reused from stage to stage; a worker keeps the last stage it set up and sets up a new one only
when a task of another stage reaches it. The run-wide steps (a global stage's reduce and finish,
the final check) run as single tasks too, so the driver's memory does not grow with the pool.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Sequence

import ray

from curate.errors import CurateError
from curate.executors.base import Executor, OnResult, Task
from curate.stage import Resources, Stage

_IN_FLIGHT_PER_WORKER = 2
# A task whose worker process dies (killed, out of memory, node lost) is run again: tasks write
# to temporary names and commit last, so a rerun is safe. Errors raised by a task are not retried.
_RETRIES_ON_WORKER_DEATH = 3
_ready: dict[str, Stage] = {}  # per worker process: the stage it last set up


def _run(stage_key: str, stage: Stage | None, task: Task, shared: Any) -> dict:
    """Run one task on a worker, setting the stage up the first time this worker sees it."""
    if stage is None:
        return task(None, shared)
    if stage_key not in _ready:
        _ready.clear()  # one set-up stage per worker: models of earlier stages are freed
        stage.setup()
        _ready[stage_key] = stage
    return task(_ready[stage_key], shared)


def _call(function: Callable, *args):
    """Run one function on a worker (named so, a worker's process title says what it runs)."""
    return function(*args)


def _options(res: Resources) -> dict[str, Any]:
    """Ray's task options for what one task needs."""
    options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_retries": _RETRIES_ON_WORKER_DEATH}
    if res.memory:
        options["memory"] = res.memory
    return options


class RayExecutor(Executor):
    """Runs tasks on Ray, reserving the stage's declared cpus, gpus and memory per task."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.workers = workers
        self.address = address
        self._owns_ray = False
        self._stage_keys: dict[int, str] = {}

    def __enter__(self) -> "RayExecutor":
        if not ray.is_initialized():
            local = self.address is None
            ray.init(  # "local": a private instance, even where `ray start` runs a cluster on this machine
                address=self.address or "local",
                num_cpus=(self.workers or os.cpu_count()) if local else None,
                include_dashboard=False,
                logging_level="warning",
                log_to_driver=True,
            )
            self._owns_ray = True
        return self

    def __exit__(self, *exc) -> None:
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def helper_processes(self) -> list:
        """The local Ray instance's processes (object store, scheduler, agents, workers)."""
        if not self._owns_ray or self.address is not None:
            return []
        import psutil

        return psutil.Process().children(recursive=True)

    def parallelism(self, stage: Stage | None) -> int:
        """How many of the stage's tasks the cluster runs at once, capped by `workers`."""
        total = ray.cluster_resources()
        res = stage.resources if stage is not None else Resources()
        fits = [int(total.get("CPU", 0) // res.cpus) if res.cpus else 1 << 30]
        if res.gpus:
            fits.append(int(total.get("GPU", 0) // res.gpus))
        count = min(fits + [self.workers or 1 << 30])
        if count < 1:
            raise CurateError(
                f"stage {stage.id!r} needs {res} per worker but the Ray cluster has {total}; "
                f"lower the stage's resources or add nodes"
            )
        return count

    def call(self, function: Callable, *args, resources: Resources | None = None):
        """Run the function as one Ray task on a worker, reserving `resources` (default one cpu)."""
        remote = ray.remote(_call).options(**_options(resources or Resources()))
        return _get(remote.remote(function, *args))

    def map_shards(self, stage: Stage | None, tasks: Sequence[Task], shared: Any = None,
                   on_result: OnResult | None = None) -> list[dict]:
        """Run tasks with a bounded number in flight; results come back in task order."""
        if not tasks:
            return []
        remote = ray.remote(_run).options(**_options(stage.resources if stage is not None else Resources()))
        stage_key = self._stage_keys.setdefault(id(stage), f"{getattr(stage, 'id', 'check')}-{uuid.uuid4().hex}")
        stage_ref, shared_ref = ray.put(stage), ray.put(shared)
        limit = self.parallelism(stage) * _IN_FLIGHT_PER_WORKER
        results: list[dict | None] = [None] * len(tasks)
        pending: dict[Any, int] = {}
        next_index = 0
        while next_index < len(tasks) or pending:
            while next_index < len(tasks) and len(pending) < limit:
                pending[remote.remote(stage_key, stage_ref, tasks[next_index], shared_ref)] = next_index
                next_index += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            results[index] = _get(done[0])
            if on_result:
                on_result(results[index])
        return results  # type: ignore[return-value]


def _get(ref) -> dict:
    """ray.get, but a CurateError raised on a worker comes back as itself, not wrapped."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, CurateError):
            raise cause from None
        raise
