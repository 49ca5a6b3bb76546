"""A reduce run as a tree of tasks gives what one loop over every shard gives: sums of count
vectors of unequal lengths and gathers in shard order, over several levels, in this process
and on Ray; and it leaves no partial result behind, not even a killed run's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.executors.local import LocalExecutor
from curate.stage import Collected, stage_class
from curate.tree_reduce import SCRATCH, TreeReduce


def _entry_counts(collected: Collected, shard: str, argument: int) -> np.ndarray:
    """A count vector as long as the shard's largest value, scaled by the argument."""
    values = collected.column(shard, "value").to_numpy()
    return argument * np.bincount(values)


def _values(collected: Collected, shard: str, argument: None) -> np.ndarray:
    return collected.column(shard, "value").to_numpy()


def _collected(tmp_path, shards: int) -> tuple[Collected, list[np.ndarray]]:
    rng, paths, values = np.random.default_rng(7), {}, []
    for shard in range(shards):
        value = rng.integers(0, rng.integers(1, 40), rng.integers(0, 30))
        paths[f"{shard:03d}"] = tmp_path / f"{shard:03d}.parquet"
        pq.write_table(pa.table({"value": pa.array(value, pa.int64())}), paths[f"{shard:03d}"])
        values.append(value)
    return Collected(paths, tmp_path / "stage" / "report", "key"), values


def _stage():
    cls = stage_class("select_top_fraction")
    return cls(cls.Params(column="s", fraction=0.5))


@pytest.mark.parametrize("shards, fan_in", [(1, 64), (7, 2), (9, 3)])
def test_a_tree_sums_and_gathers_as_one_loop_does(tmp_path, shards, fan_in):
    collected, values = _collected(tmp_path, shards)
    tree = TreeReduce(LocalExecutor(), _stage(), collected, fan_in=fan_in)
    expected = np.zeros(max(len(np.bincount(v)) for v in values), np.int64)
    for value in values:
        expected[:len(np.bincount(value))] += 3 * np.bincount(value)
    assert np.array_equal(tree.summed(_entry_counts, 3), expected)
    assert np.array_equal(tree.gathered(_values), np.concatenate(values))
    assert not (tmp_path / "stage" / SCRATCH).exists()


def test_a_killed_tree_leaves_nothing_the_next_one_reads(tmp_path):
    collected, values = _collected(tmp_path, 5)
    stale = tmp_path / "stage" / SCRATCH / "level-1" / "000009.npy"
    stale.parent.mkdir(parents=True)
    np.save(stale, np.arange(5))
    assert np.array_equal(TreeReduce(LocalExecutor(), _stage(), collected, fan_in=2).gathered(_values),
                          np.concatenate(values))
    assert not stale.exists()


def test_a_tree_on_ray_gives_the_same_sums(tmp_path, ray_session):
    from curate.executors.ray import RayExecutor

    collected, values = _collected(tmp_path, 11)
    with RayExecutor(workers=2) as executor:
        tree = TreeReduce(executor, _stage(), collected, fan_in=2)
        summed, gathered = tree.summed(_entry_counts, 1), tree.gathered(_values)
    local = TreeReduce(LocalExecutor(), _stage(), collected)
    assert np.array_equal(summed, local.summed(_entry_counts, 1))
    assert np.array_equal(gathered, np.concatenate(values))
