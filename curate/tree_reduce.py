"""A global stage's reduce run as parallel tasks over its collect results, by trees.

A reduce whose state is a sum over shards (MetaCLIP's entry counts, the histograms of a radix
select) or a small subset of the pool (the candidate band of a select) need not read every shard
in one task. TreeReduce runs a leaf function per shard, FAN_IN shards to a task, and combines
the tasks' arrays by a tree: each level's task adds (or concatenates) up to FAN_IN arrays of the
level below, read from the .npy files they were saved to, until one is left. The driver holds
only file names and the final array; a task holds FAN_IN arrays at most.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from curate.progress import NullProgress, Progress
from curate.run import write_atomic
from curate.stage import Collected, Stage

FAN_IN = 64  # arrays combined by one task
SCRATCH = "_tree"  # the stage's folder of a tree's partial results, removed once it is done

Leaf = Callable[[Collected, str, Any], np.ndarray]  # (collect results, shard, argument) -> array


@dataclass(frozen=True)
class TreeInputs:
    """What every task of a tree shares, sent once: the leaf, the collect results, the argument."""

    leaf: Leaf
    collected: Collected
    argument: Any


@dataclass(frozen=True)
class CombineTask:
    """One task of a tree: the leaf of each shard (level 0) or the arrays of the level below,
    summed or concatenated, saved to `out`."""

    shard: str  # the task's name, for progress and markers
    inputs: tuple[str, ...]
    out: str
    leaves: bool
    concatenate: bool

    def __call__(self, stage: Any, shared: TreeInputs) -> dict:
        arrays = (shared.leaf(shared.collected, item, shared.argument) if self.leaves else np.load(item)
                  for item in self.inputs)
        combined = _concatenated(list(arrays)) if self.concatenate else _summed(arrays)
        buffer = BytesIO()
        np.save(buffer, combined)
        write_atomic(Path(self.out), buffer.getvalue())
        return {"shard": self.shard, "path": self.out}


class TreeReduce:
    """Parallel steps of one global stage's reduce, run from the driver through its executor."""

    def __init__(self, executor, stage: Stage, collected: Collected, progress: Progress | NullProgress | None = None,
                 fan_in: int = FAN_IN):
        self.executor, self.stage, self.collected, self.fan_in = executor, stage, collected, fan_in
        self.scratch = collected.report_dir.parent / SCRATCH  # beside the stage's report folder
        self.progress = progress or NullProgress()

    @classmethod
    def in_process(cls, stage: Stage, collected: Collected) -> TreeReduce:
        """Every task in this process, one after another (a stage's own `reduce`)."""
        from curate.executors.local import LocalExecutor

        return cls(LocalExecutor(), stage, collected)

    def summed(self, leaf: Leaf, argument: Any = None, label: str = "sum") -> np.ndarray:
        """The sum over every shard of leaf(collected, shard, argument), int64 vectors of any
        length (shorter ones padded with zeros); an empty vector when there is no shard."""
        return self._tree(leaf, argument, label, concatenate=False)

    def gathered(self, leaf: Leaf, argument: Any = None, label: str = "gather") -> np.ndarray:
        """Every shard's leaf(collected, shard, argument) concatenated in shard order (along
        the first axis); the caller makes sure the whole is small."""
        return self._tree(leaf, argument, label, concatenate=True)

    def call(self, function: Callable, *args):
        """One task, reserving the stage's resources: a step that needs the sums in one place."""
        return self.executor.call(function, *args, resources=self.stage.resources)

    def _tree(self, leaf: Leaf, argument: Any, label: str, concatenate: bool) -> np.ndarray:
        shutil.rmtree(self.scratch, ignore_errors=True)  # what a killed run left
        inputs, items, level = TreeInputs(leaf, self.collected, argument), list(self.collected), 0
        if not items:
            return np.zeros(0, np.int64)
        while level == 0 or len(items) > 1:
            groups = [tuple(items[i:i + self.fan_in]) for i in range(0, len(items), self.fan_in)]
            tasks = [CombineTask(f"{level}-{i}", group, str(self.scratch / f"level-{level}" / f"{i:06d}.npy"),
                                 level == 0, concatenate) for i, group in enumerate(groups)]
            with self.progress.stage(f"{self.stage.id} ({label})", len(tasks)) as bar:
                items = [result["path"] for result in self.executor.map_shards(None, tasks, inputs, bar.advance)]
            level += 1
        result = np.load(items[0])
        shutil.rmtree(self.scratch, ignore_errors=True)
        return result


def _summed(arrays) -> np.ndarray:
    """int64 vectors added, the shorter ones padded with zeros."""
    total = np.zeros(0, np.int64)
    for part in arrays:
        part = np.asarray(part, np.int64)
        if len(part) > len(total):
            total, part = part.copy(), total
        total[:len(part)] += part
    return total


def _concatenated(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
