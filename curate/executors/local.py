"""The in-process executor: one worker, the driver itself (pdb works)."""

from __future__ import annotations

from typing import Any, Sequence

from curate.executors.base import Executor, OnResult, Task
from curate.stage import Stage


class LocalExecutor(Executor):
    """Runs tasks one after another in this process."""

    name = "local"

    def __init__(self) -> None:
        self._ready: set[int] = set()

    def map_shards(self, stage: Stage | None, tasks: Sequence[Task], shared: Any = None,
                   on_result: OnResult | None = None) -> list[dict]:
        """Run the tasks in order in this process."""
        if tasks and stage is not None and id(stage) not in self._ready:
            stage.setup()
            self._ready.add(id(stage))
        results = []
        for task in tasks:
            result = task(stage, shared)
            if on_result:
                on_result(result)
            results.append(result)
        return results
