"""The one interface every executor keeps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from curate.stage import Resources, Stage

Task = Callable[[Stage, Any], dict]
OnResult = Callable[[dict], None]


class Executor(ABC):
    """Runs tasks of one stage; each task is called as task(stage, shared) on a worker."""

    name = ""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def helper_processes(self) -> list:
        """Processes this executor started beside the driver (psutil.Process), which a
        killed driver could leave running. Default: none."""
        return []

    def call(self, function: Callable, *args, resources: Resources | None = None):
        """Run one function once, where the executor runs tasks, and return its result. The
        run-wide steps (a global stage's reduce and finish, the final check) go through here, so
        that the memory they need, which grows with the pool, is not held by the driver.
        Default: in this process."""
        return function(*args)

    @abstractmethod
    def map_shards(self, stage: Stage | None, tasks: Sequence[Task], shared: Any = None,
                   on_result: OnResult | None = None) -> list[dict]:
        """Run every task; call on_result as each finishes; return results in task order.

        `shared` is sent to the workers once (not once per task). Each worker calls
        stage.setup() once before its first task. Tasks of no stage (the end-of-run check) are
        given None for it and reserve one cpu.
        """
        ...
