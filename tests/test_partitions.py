"""Partition plans: buckets are never split, partitions are about equal, none is empty."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import ResourceError
from curate.partitions import (BUCKET, check_fits, hex_prefix_buckets, partition_count, plan_partitions,
                               read_partition)


@pytest.mark.parametrize("partitions", [1, 2, 3, 8, 64])
def test_a_plan_covers_every_bucket_once_in_runs_of_about_equal_rows(partitions):
    sizes = np.random.default_rng(partitions).integers(0, 50, 200)
    sizes[[3, 50, 51]] = 0
    plan = plan_partitions(sizes, partitions)
    assert plan.bounds[0] == 0 and plan.bounds[-1] == len(sizes) and plan.bounds == sorted(set(plan.bounds))
    assert plan.rows == [int(sizes[lo:hi].sum()) for lo, hi in zip(plan.bounds, plan.bounds[1:])]
    assert sum(plan.rows) == sizes.sum() and min(plan.rows) > 0 and plan.count <= partitions
    assert max(plan.rows) <= sizes.sum() / partitions + sizes.max()  # a run is cut at the first bucket past its share
    assert plan.largest_bucket == sizes.max()


def test_a_bucket_larger_than_a_share_is_one_partition_and_empty_runs_are_left_out():
    plan = plan_partitions(np.array([0, 0, 100, 0, 1, 1, 0]), 4)
    assert plan.rows[0] == 100 and sum(plan.rows) == 102 and all(plan.rows) and plan.bounds[0] == 0
    empty = plan_partitions(np.zeros(5, np.int64), 3)
    assert empty.count == 1 and empty.rows == [0] and empty.bounds == [0, 5]


def test_partition_count_follows_the_target_unless_set():
    assert partition_count(10, 4, None) == 3 and partition_count(0, 4, None) == 1 and partition_count(10, 4, 7) == 7


def test_hex_buckets_are_the_first_four_digits_in_either_case_and_type():
    values = ["abcd0123", "ABCD9999", "0000ffff", "ffff"]
    assert hex_prefix_buckets(pa.array(values)).tolist() == [0xABCD, 0xABCD, 0, 0xFFFF]
    assert hex_prefix_buckets(pa.array([v.encode() + b"\xff\x00" for v in values], pa.binary())).tolist() == \
        [0xABCD, 0xABCD, 0, 0xFFFF]


def test_a_partition_reads_only_its_buckets_from_every_shard(tmp_path):
    shards = {}
    for name, buckets in (("s1", [0, 0, 2, 5]), ("s2", [1, 2, 2, 7])):
        shards[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"v": [f"{name}-{i}" for i in range(4)], BUCKET: pa.array(buckets, pa.int32())}),
                       shards[name], row_group_size=1)
    rows = read_partition(shards, 1, 3)
    assert rows.column("v").to_pylist() == ["s1-2", "s2-0", "s2-1", "s2-2"]
    assert rows.column("shard").to_pylist() == ["s1", "s2", "s2", "s2"]
    assert read_partition(shards, 8, 9).num_rows == 0


def test_a_partition_too_large_for_the_worker_is_refused_by_name():
    check_fits("semdedup", "part-00003", 1000, 100.0, 1 << 30)
    with pytest.raises(ResourceError, match=r"partition part-00003 holds 10,000,000 rows.*partitions"):
        check_fits("semdedup", "part-00003", 10_000_000, 1000.0, 1 << 30)
