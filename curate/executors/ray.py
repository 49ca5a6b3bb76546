"""The Ray executor: a pool of actors per stage, each holding one set-up copy of the stage.

This is the only module that imports ray. Without an address it starts a local Ray instance
on this machine; with `auto` or `ray://host:port` it joins an existing cluster.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import ray

from curate.errors import CurateError
from curate.executors.base import Executor, OnResult, Task
from curate.stage import Stage

_IN_FLIGHT_PER_ACTOR = 2


class _StageWorker:
    """A Ray actor that sets its stage up once and then runs tasks on it."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.stage.setup()

    def run(self, task: Task, shared: Any) -> dict:
        return task(self.stage, shared)


class RayExecutor(Executor):
    """Runs tasks on Ray actors, honouring the stage's declared cpus, gpus and memory."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.workers = workers
        self.address = address
        self._owns_ray = False

    def __enter__(self) -> "RayExecutor":
        if not ray.is_initialized():
            local = self.address is None
            ray.init(
                address=self.address,
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

    def _actor_count(self, stage: Stage, n_tasks: int) -> int:
        """As many actors as the cluster fits for the stage's resources, capped by workers."""
        total = ray.cluster_resources()
        res = stage.resources
        fits = [int(total.get("CPU", 1) // res.cpus) if res.cpus else n_tasks]
        if res.gpus:
            fits.append(int(total.get("GPU", 0) // res.gpus))
        count = min(fits + [n_tasks, self.workers or n_tasks])
        if count < 1:
            raise CurateError(
                f"stage {stage.id!r} needs {res} per worker but the Ray cluster has {total}; "
                f"lower the stage's resources or add nodes"
            )
        return count

    def map_shards(self, stage: Stage, tasks: Sequence[Task], shared: Any = None,
                   on_result: OnResult | None = None) -> list[dict]:
        """Run tasks on an actor pool; results come back in task order."""
        if not tasks:
            return []
        res = stage.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus}
        if res.memory:
            options["memory"] = res.memory
        actor_class = ray.remote(_StageWorker).options(**options)
        actors = [actor_class.remote(stage) for _ in range(self._actor_count(stage, len(tasks)))]
        shared_ref = ray.put(shared)
        try:
            return self._drain(actors, tasks, shared_ref, on_result)
        finally:
            for actor in actors:
                ray.kill(actor)

    def _drain(self, actors, tasks, shared_ref, on_result) -> list[dict]:
        results: list[dict | None] = [None] * len(tasks)
        queue = list(range(len(tasks)))[::-1]
        pending: dict[Any, tuple[int, Any]] = {}

        def submit(actor) -> None:
            index = queue.pop()
            pending[actor.run.remote(tasks[index], shared_ref)] = (index, actor)

        for actor in actors:
            for _ in range(_IN_FLIGHT_PER_ACTOR):
                if queue:
                    submit(actor)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(done[0])
            results[index] = _get(done[0])
            if on_result:
                on_result(results[index])
            if queue:
                submit(actor)
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
